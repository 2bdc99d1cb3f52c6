"""Digests, their releases and deliveries (the outbox), per-list watermarks,
suppressions, settings."""

import sqlalchemy as sa
from alembic import op

from syndicate.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_slug", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("period", UTCDateTime, nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("list_slug", "key", name="uq_digests_list_key"),
    )
    op.create_table(
        "digest_releases",
        sa.Column(
            "digest_id",
            sa.Integer,
            sa.ForeignKey("digests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("release_id", sa.String(200), primary_key=True),
        sa.Column("corrected", sa.Boolean, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "digest_id", sa.Integer, sa.ForeignKey("digests.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("reply", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("digest_id", "address", name="uq_deliveries_digest_address"),
    )
    op.create_index("ix_deliveries_state", "deliveries", ["state"])
    op.create_table(
        "list_state",
        sa.Column("list_slug", sa.String(100), primary_key=True),
        sa.Column("watermark", UTCDateTime, nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("list_slug", sa.String(100), primary_key=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "sent_releases",
        sa.Column("list_slug", sa.String(100), primary_key=True),
        sa.Column("release_id", sa.String(200), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column(
            "digest_id", sa.Integer, sa.ForeignKey("digests.id", ondelete="CASCADE"), nullable=False
        ),
    )


def downgrade() -> None:
    for table in (
        "sent_releases",
        "suppressions",
        "settings",
        "list_state",
        "deliveries",
        "digest_releases",
        "digests",
    ):
        op.drop_table(table)

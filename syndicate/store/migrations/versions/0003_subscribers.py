"""Self-service subscriptions, topic choices, confirmation rate limit, resubscription
records, bounces."""

import sqlalchemy as sa
from alembic import op

from syndicate.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("list_slug", sa.String(100), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime),
    )
    op.create_table(
        "topic_choices",
        sa.Column("list_slug", sa.String(100), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "confirmation_sends",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("sent_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "resubscriptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("list_slug", sa.String(100), nullable=False),
        sa.Column("by", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("suppressed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_resubscriptions_address", "resubscriptions", ["address"])
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("diagnostic", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_bounces_address", "bounces", ["address"])


def downgrade() -> None:
    for table in (
        "bounces",
        "resubscriptions",
        "confirmation_sends",
        "topic_choices",
        "subscriptions",
    ):
        op.drop_table(table)

"""Releases, their effective topics, and per-source fetch state.

A migration is a frozen snapshot: it spells its tables out instead of importing schema.py,
so that later schema changes do not rewrite history.
"""

import sqlalchemy as sa
from alembic import op

from syndicate.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("published", UTCDateTime, nullable=False),
        sa.Column("updated", UTCDateTime),
        sa.Column("embargo", UTCDateTime),
        sa.Column("public_from", UTCDateTime, nullable=False),
        sa.Column("dateline", sa.Text),
        sa.Column("lang", sa.String(35), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("attachments", sa.JSON, nullable=False),
        sa.Column("retracted", sa.Boolean, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("origin_ref", sa.Text),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_releases_public_from", "releases", ["public_from"])
    op.create_index("ix_releases_changed_at", "releases", ["changed_at"])
    op.create_table(
        "release_topics",
        sa.Column("topic", sa.String(100), primary_key=True),
        sa.Column(
            "release_id",
            sa.String(200),
            sa.ForeignKey("releases.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_release_topics_release_id", "release_topics", ["release_id"])
    op.create_table(
        "source_state",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("checked_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_state")
    op.drop_table("release_topics")
    op.drop_table("releases")

"""Tables, in SQLAlchemy Core. Datetimes are stored as naive UTC on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database so that
    SQLite's text comparison and PostgreSQL's timestamps order the same way."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


metadata = sa.MetaData()

releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("published", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime),
    sa.Column("embargo", UTCDateTime),
    sa.Column("public_from", UTCDateTime, nullable=False, index=True),
    sa.Column("dateline", sa.Text),
    sa.Column("lang", sa.String(35), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("author", sa.Text),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("topics", sa.JSON, nullable=False),
    sa.Column("attachments", sa.JSON, nullable=False),
    sa.Column("retracted", sa.Boolean, nullable=False, default=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("origin_ref", sa.Text),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False, index=True),
)

release_topics = sa.Table(
    "release_topics",
    metadata,
    sa.Column("topic", sa.String(100), primary_key=True),
    sa.Column(
        "release_id",
        sa.String(200),
        sa.ForeignKey("releases.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

source_state = sa.Table(
    "source_state",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("checked_at", UTCDateTime, nullable=False),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("list_slug", sa.String(100), nullable=False),
    # The schedule's fire time, or for an `immediate` list the release id: one digest per key.
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("period", UTCDateTime, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("list_slug", "key", name="uq_digests_list_key"),
)

digest_releases = sa.Table(
    "digest_releases",
    metadata,
    sa.Column(
        "digest_id", sa.Integer, sa.ForeignKey("digests.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("release_id", sa.String(200), primary_key=True),
    sa.Column("corrected", sa.Boolean, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "digest_id", sa.Integer, sa.ForeignKey("digests.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("topics", sa.JSON, nullable=False),
    # pending → sending → sent | failed | deferred (deferred goes back to pending on retry)
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("reply", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # The worker that last claimed the delivery, and when. A `sending` row belongs to a live
    # worker while that worker holds its lock (store/locks.py); otherwise it is sent again.
    sa.Column("worker", sa.String(64)),
    sa.Column("claimed_at", UTCDateTime),
    sa.UniqueConstraint("digest_id", "address", name="uq_deliveries_digest_address"),
    # Claiming takes the oldest digest's pending rows first, in id order.
    sa.Index("ix_deliveries_claim", "state", "digest_id", "id"),
)

list_state = sa.Table(
    "list_state",
    metadata,
    sa.Column("list_slug", sa.String(100), primary_key=True),
    # Releases public up to this instant have been compiled into this list's digests.
    sa.Column("watermark", UTCDateTime, nullable=False),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("address", sa.String(320), primary_key=True),
    # A list slug, or '*' for every list.
    sa.Column("list_slug", sa.String(100), primary_key=True),
    sa.Column("reason", sa.String(20), nullable=False),  # unsubscribed|bounced|complained|admin
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

sent_releases = sa.Table(
    "sent_releases",
    metadata,
    sa.Column("list_slug", sa.String(100), primary_key=True),
    sa.Column("release_id", sa.String(200), primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column(
        "digest_id", sa.Integer, sa.ForeignKey("digests.id", ondelete="CASCADE"), nullable=False
    ),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    # Self-service subscriptions, from the public subscribe form (double opt-in).
    sa.Column("list_slug", sa.String(100), primary_key=True),
    sa.Column("address", sa.String(320), primary_key=True),  # the suppression key (casefolded)
    sa.Column("email", sa.String(320), nullable=False),  # as normalised, for the envelope
    sa.Column("topics", sa.JSON, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # pending | active
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
)

topic_choices = sa.Table(
    "topic_choices",
    metadata,
    # A subscriber's own choice of topics (preferences page); wins over the list file's.
    sa.Column("list_slug", sa.String(100), primary_key=True),
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("topics", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

confirmation_sends = sa.Table(
    "confirmation_sends",
    metadata,
    # When an address was last sent a confirmation (at most one an hour, whatever the list).
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("sent_at", UTCDateTime, nullable=False),
)

resubscriptions = sa.Table(
    "resubscriptions",
    metadata,
    # Every lifted suppression: who brought the address back, when, and what was lifted.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address", sa.String(320), nullable=False, index=True),
    sa.Column("list_slug", sa.String(100), nullable=False),
    sa.Column("by", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    # The suppression lifted: its scope (this list, or '*'), reason, source and time.
    sa.Column("scope", sa.String(100), nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("suppressed_at", UTCDateTime, nullable=False),
)

bounces = sa.Table(
    "bounces",
    metadata,
    # Hard bounces: a 5xx to RCPT, or a DSN reporting a permanent failure.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address", sa.String(320), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),  # enhanced status (5.1.1) or reply code
    sa.Column("diagnostic", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    # One row per report: a DSN fed twice is counted once.
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    # One row per scheduled job and fire time: whoever inserts it runs the job. `worker` is the
    # holder; while `finished_at` is unset and the holder's lock is free, another takes over.
    sa.Column("job", sa.String(200), primary_key=True),
    sa.Column("fire_time", UTCDateTime, primary_key=True),
    sa.Column("worker", sa.String(64), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
)

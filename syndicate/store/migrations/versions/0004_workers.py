"""Many senders: who claimed each delivery and when (a claimer is alive while it holds its
lock), an index for claiming the oldest pending rows first, and `job_runs`, so that each
scheduled job fires once across every process sharing the database."""

import sqlalchemy as sa
from alembic import op

from syndicate.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("worker", sa.String(64)))
        batch.add_column(sa.Column("claimed_at", UTCDateTime))
    op.drop_index("ix_deliveries_state", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["state", "digest_id", "id"])
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("fire_time", UTCDateTime, primary_key=True),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index("ix_deliveries_state", "deliveries", ["state"])
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("worker")

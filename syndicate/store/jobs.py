"""Scheduled jobs that fire once across every process sharing the database: a row per
(job, fire time), inserted by whoever runs it; a dead holder's unfinished row is taken over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syndicate.store.digests import insert_ignoring_conflict
from syndicate.store.schema import job_runs


@dataclass(frozen=True, slots=True)
class JobRun:
    job: str
    fire_time: datetime
    worker: str
    started_at: datetime
    finished_at: datetime | None


def _run(row: Any) -> JobRun:
    return JobRun(row.job, row.fire_time, row.worker, row.started_at, row.finished_at)


def start(conn: Connection, job: str, fire_time: datetime, worker: str, now: datetime) -> bool:
    """Record that `worker` runs `job` for `fire_time`; False when someone already does (or
    did)."""
    row = {"job": job, "fire_time": fire_time, "worker": worker, "started_at": now}
    return insert_ignoring_conflict(conn, job_runs, row)


def get(conn: Connection, job: str, fire_time: datetime) -> JobRun | None:
    row = conn.execute(
        sa.select(job_runs).where(job_runs.c.job == job, job_runs.c.fire_time == fire_time)
    ).first()
    return _run(row) if row else None


def take_over(
    conn: Connection, job: str, fire_time: datetime, dead: str, worker: str, now: datetime
) -> bool:
    """Make `worker` the holder of an unfinished run whose holder `dead` died; False if
    another process took it over first."""
    updated = conn.execute(
        job_runs.update()
        .where(
            job_runs.c.job == job,
            job_runs.c.fire_time == fire_time,
            job_runs.c.worker == dead,
            job_runs.c.finished_at.is_(None),
        )
        .values(worker=worker, started_at=now)
    )
    return bool(updated.rowcount)


def finish(conn: Connection, job: str, fire_time: datetime, worker: str, now: datetime) -> None:
    conn.execute(
        job_runs.update()
        .where(
            job_runs.c.job == job,
            job_runs.c.fire_time == fire_time,
            job_runs.c.worker == worker,
        )
        .values(finished_at=now)
    )


def prune(conn: Connection, before: datetime) -> int:
    """Forget finished runs that fired before `before`."""
    deleted = conn.execute(
        job_runs.delete().where(job_runs.c.fire_time < before, job_runs.c.finished_at.isnot(None))
    )
    return int(deleted.rowcount)

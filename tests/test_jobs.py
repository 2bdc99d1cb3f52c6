"""Scheduled jobs fire once across the processes sharing a database, and a job whose
holder dies before finishing is taken over by another (real processes, killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syndicate.service import claim_job, poll_slot
from syndicate.store import Store, locks
from syndicate.store import jobs as store_jobs

FIRE = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
NOW = FIRE + timedelta(seconds=1)

# A process that runs `service.once` for one job: the job writes "start PID", works (for
# PAUSE seconds if it is the first to start it, else briefly), writes "done PID". It prints
# "ran" or "skipped".
CHILD = textwrap.dedent("""\
    import asyncio, os, sys
    from datetime import UTC, datetime
    from syndicate import service
    from syndicate.store import Store, locks

    url, log, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def note(what):
        with open(log, "a") as f:
            f.write(f"{what} {os.getpid()}\\n")

    async def work():
        first = not os.path.exists(log)
        note("start")
        await asyncio.sleep(pause if first else 0.1)
        note("done")

    with Store.open(url) as store, locks.present(store) as me:
        ran = asyncio.run(service.once(
            store, me, "poll", datetime(2026, 11, 23, 5, tzinfo=UTC), work,
            clock=lambda: datetime.now(UTC), check_every=0.05,
        ))
    print("ran" if ran else "skipped", flush=True)
""")


def child(store: Store, log: Path, pause: float) -> subprocess.Popen[str]:
    url = store.engine.url.render_as_string(False)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(log), str(pause)],
        stdout=subprocess.PIPE,
        text=True,
    )


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def wait_for(condition: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not (callable(condition) and condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_processes_firing_one_job_run_it_once(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "job.log"
    first, second = child(store, log, 0.5), child(store, log, 0.5)
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in (first, second))
    assert outputs == ["ran", "skipped"]
    assert [line.split()[0] for line in lines(log)] == ["start", "done"]


def test_a_job_whose_holder_is_killed_is_taken_over_and_then_done(
    tmp_path: Path, store: Store
) -> None:
    log = tmp_path / "job.log"
    processes = {p.pid: p for p in (child(store, log, 60), child(store, log, 60))}
    wait_for(lambda: len(lines(log)) == 1)
    time.sleep(0.5)  # the other one waits for the live holder meanwhile
    [started] = lines(log)
    holder = processes.pop(int(started.split()[1]))
    [waiter] = processes.values()
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    assert waiter.communicate(timeout=60)[0].strip() == "ran"
    assert lines(log) == [f"start {holder.pid}", f"start {waiter.pid}", f"done {waiter.pid}"]
    with locks.present(store) as late:
        assert claim_job(store, late, "poll", FIRE, datetime.now(UTC)) == "done"


def test_a_live_holder_keeps_its_job_and_a_dead_ones_is_taken_over(store: Store) -> None:
    with locks.present(store) as running, locks.present(store) as other:
        assert claim_job(store, running, "build", FIRE, NOW) == "mine"
        assert claim_job(store, other, "build", FIRE, NOW) == "busy"
        assert claim_job(store, running, "build", FIRE, NOW) == "busy"  # running it already
    with locks.present(store) as holder:
        assert claim_job(store, holder, "poll", FIRE, NOW) == "mine"
    # `holder` is gone without finishing: the next asker takes it over, once.
    with locks.present(store) as heir, locks.present(store) as late:
        assert claim_job(store, heir, "poll", FIRE, NOW) == "mine"
        assert claim_job(store, late, "poll", FIRE, NOW) == "busy"
        with store.begin() as conn:
            store_jobs.finish(conn, "poll", FIRE, heir, NOW)
        assert claim_job(store, late, "poll", FIRE, NOW) == "done"
        assert claim_job(store, late, "poll", FIRE + timedelta(minutes=15), NOW) == "mine"


def test_finished_runs_are_pruned_after_a_week(store: Store) -> None:
    with store.begin() as conn:
        store_jobs.start(conn, "poll", FIRE, "w", NOW)
        store_jobs.start(conn, "poll", FIRE + timedelta(days=1), "w", NOW)
        store_jobs.finish(conn, "poll", FIRE, "w", NOW)
        assert store_jobs.prune(conn, FIRE + timedelta(days=8)) == 1  # the unfinished stays
        assert store_jobs.get(conn, "poll", FIRE) is None


def test_interval_jobs_fire_at_the_same_instants_in_every_process() -> None:
    every = 15 * 60
    slot = poll_slot(datetime(2026, 11, 23, 5, 7, 31, tzinfo=UTC), every)
    assert slot == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert poll_slot(slot, every) == slot
    assert poll_slot(slot + timedelta(seconds=every - 0.001), every) == slot
    assert poll_slot(slot - timedelta(microseconds=1), every) == slot - timedelta(seconds=every)

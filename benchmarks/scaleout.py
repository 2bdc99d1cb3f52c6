"""Scale-out benchmark: `syndicate worker` processes drain one outbox in one PostgreSQL
database together, through a sink that counts every message it accepts per recipient.

    python benchmarks/scaleout.py [--recipients 100000] [--workers 2] [--concurrency 8]
                                  [--kill-at 0.3] [--fsync on|off] [--no-single]

PostgreSQL: the server of SYNDICATE_TEST_POSTGRES_URL when it is set (as scripts/with-postgres
sets it; the user must be allowed to create databases), or else a throwaway cluster started
here as scripts/with-postgres does (initdb and pg_ctl of the newest /usr/lib/postgresql/*/bin,
on a free 127.0.0.1 port, as the user postgres when run as root; removed afterwards). Each
run gets a database of its own, made and dropped here; `--fsync off` starts the throwaway
cluster without fsync (faster commits, still durable against a crash of any process).

The sink: a small SMTP server (asyncio, in a child process, offering PIPELINING) that accepts
every message and counts each accepted one for each of its RCPT addresses, so duplicates are
counted where they would reach a reader. It is Python: on a small machine it competes with
the workers for the CPU and limits their speed. Postfix's smtp-sink counts messages only.

Each run: a project with a list of --recipients subscribers and 20 releases, its digest made
(not timed: `outbox.create`), then --workers `syndicate worker --once --concurrency N`
processes started together; timed from their start to the last one's exit. Printed per
worker: deliveries it recorded as sent (from the store), its wall time, messages per second,
CPU per message and peak RSS; then what the sink counted (messages, duplicates, missing) and
what the store says. Runs:
  1. one worker alone, for reference (skipped with --no-single);
  2. --workers workers to the end: goal no duplicate and none missing;
  3. the same, and worker 1 is SIGKILLed once the sink has --kill-at of the messages: the
     others take its rows over (their log says "is gone"); goal none missing, and duplicates
     at most its connections (the messages it had in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from digest import LIST, Project, make_project, utcnow
from sink import HOST, free_port, process_cpu

from syndicate.digest import outbox
from syndicate.store import digests as store_digests
from syndicate.store.schema import deliveries

# --- The counting sink (a child process: `scaleout.py --sink PORT STATS`). ---


class _Session(asyncio.Protocol):
    """One SMTP session: commands answered as they come (pipelined groups included), the
    message read up to CRLF.CRLF, each accepted message counted for its recipients."""

    def __init__(self, counts: Counter[bytes], totals: dict[str, int]) -> None:
        self.counts, self.totals = counts, totals
        self.buffer = bytearray()
        self.recipients: list[bytes] = []
        self.in_data = False
        self.scanned = 0  # of the message, how far the terminator was looked for

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 counting-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        replies: list[bytes] = []
        while True:
            if self.in_data:
                if buffer[:3] == b".\r\n" and self.scanned == 0:  # an empty message
                    end, skip = 0, 3
                else:
                    end, skip = buffer.find(b"\r\n.\r\n", max(0, self.scanned - 4)), 5
                if end < 0:
                    self.scanned = len(buffer)
                    break
                del buffer[: end + skip]
                self.in_data, self.scanned = False, 0
                self.totals["messages"] += 1
                for address in self.recipients:
                    self.counts[address] += 1
                self.recipients = []
                replies.append(b"250 2.0.0 Ok: counted\r\n")
                continue
            end = buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(buffer[: end + 1])
            del buffer[: end + 1]
            verb = line[:4].upper()
            if verb == b"EHLO":
                replies.append(b"250-counting-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n")
                replies.append(b"250 SIZE 104857600\r\n")
            elif verb == b"MAIL":
                self.recipients = []
                replies.append(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                self.recipients.append(line[line.find(b"<") + 1 : line.rfind(b">")].lower())
                replies.append(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                if self.recipients:
                    self.in_data = True
                    replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                else:
                    replies.append(b"554 5.5.1 Error: no valid recipients\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"".join([*replies, b"221 2.0.0 Bye\r\n"]))
                self.transport.close()
                return
            elif verb == b"XSTA":  # ours: how many messages so far
                replies.append(f"250 {self.totals['messages']}\r\n".encode())
            elif verb in (b"HELO", b"RSET", b"NOOP"):
                self.recipients = [] if verb == b"RSET" else self.recipients
                replies.append(b"250 2.0.0 Ok\r\n")
            else:
                replies.append(b"502 5.5.2 Error: command not recognized\r\n")
        if replies:
            self.transport.write(b"".join(replies))


def serve_sink(port: int, stats: Path) -> None:
    """Count until SIGTERM, then write the counts' summary to `stats` as JSON."""
    counts: Counter[bytes] = Counter()
    totals = {"messages": 0}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        server = await loop.create_server(
            lambda: _Session(counts, totals), HOST, port, backlog=1000
        )
        async with server:
            await stopped.wait()

    asyncio.run(main())
    summary = {
        "messages": totals["messages"],
        "recipients": len(counts),
        "duplicates": sum(n - 1 for n in counts.values()),
        "most": max(counts.values(), default=0),
    }
    stats.write_text(json.dumps(summary), encoding="utf-8")


class CountingSink:
    """The sink child process, on a free port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.stats = folder / "sink.json"
        command = [sys.executable, __file__, "--sink", str(self.port), str(self.stats)]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 10
        while True:
            with suppress(OSError), socket.create_connection((HOST, self.port), timeout=1):
                break
            if time.monotonic() > deadline or self.process.poll() is not None:
                sys.exit("the counting sink did not start")
            time.sleep(0.05)

    def messages(self) -> int:
        with socket.create_connection((HOST, self.port), timeout=5) as probe:
            reader = probe.makefile("rb")
            reader.readline()  # 220
            probe.sendall(b"XSTA\r\n")
            count = int(reader.readline().split()[1])
            probe.sendall(b"QUIT\r\n")
            return count

    def cpu(self) -> float:
        return process_cpu(self.process.pid)

    def stop(self) -> dict[str, int]:
        """Stop it; its counts: messages, recipients, duplicates, most (copies of one)."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        summary: dict[str, int] = json.loads(self.stats.read_text(encoding="utf-8"))
        return summary


# --- PostgreSQL. ---


@contextmanager
def postgres(fsync: bool) -> Iterator[tuple[sa.URL, str]]:
    """(the URL of a server where databases may be made, and a description of it)."""
    given = os.environ.get("SYNDICATE_TEST_POSTGRES_URL")
    if given:
        yield sa.make_url(given), "the server of SYNDICATE_TEST_POSTGRES_URL"
        return
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        sys.exit("no PostgreSQL server found (Debian package postgresql), and no URL given")
    bin_dir = found[-1]
    folder = Path(tempfile.mkdtemp(prefix="scaleout-pg-"))
    owner: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(folder, "postgres")
        owner = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = folder / "data"
    options = f"-h {HOST} -p {port} -k {folder}" + ("" if fsync else " -c fsync=off")
    pg_ctl = [*owner, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        initdb = [*owner, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
        subprocess.run(initdb, check=True, stdout=subprocess.DEVNULL)
        start = [*pg_ctl, "-l", str(folder / "log"), "-w", "-o", options, "start"]
        subprocess.run(start, check=True, stdout=subprocess.DEVNULL)
        try:
            url = sa.make_url(f"postgresql+psycopg://postgres@{HOST}:{port}/postgres")
            described = f"PostgreSQL {bin_dir.parent.name}, a throwaway cluster"
            yield url, f"{described} (fsync {'on' if fsync else 'off'})"
        finally:
            subprocess.run([*pg_ctl, "-m", "fast", "stop"], check=False, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def database(server: sa.URL, name: str) -> Iterator[str]:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


# --- The runs. ---


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    started: float
    ended: float = 0.0
    cpu: float = 0.0
    peak_rss: float = 0.0  # MB, as last seen while it ran
    status: int | None = None
    killed: bool = False
    sent: int = 0  # deliveries the store says it sent

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def watch(self) -> None:
        """Note its peak RSS so far (VmHWM: getrusage's ru_maxrss of a child started with
        vfork counts its parent's size at the exec)."""
        with suppress(OSError, ValueError):
            status = Path(f"/proc/{self.process.pid}/status").read_text()
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss = max(self.peak_rss, int(line.split()[1]) / 1024)

    def reap(self) -> bool:
        """Collect its exit and resource usage (os.wait4: this child's); whether it ended."""
        if self.status is not None:
            return True
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.ended = time.perf_counter()
        self.status = self.process.returncode = os.waitstatus_to_exitcode(status)
        self.cpu = usage.ru_utime + usage.ru_stime
        return True


@dataclass
class Counted:
    """What the sink counted."""

    messages: int
    recipients: int
    duplicates: int
    cpu: float  # seconds


@dataclass
class Outcome:
    label: str
    seconds: float
    workers: list[Worker]
    sink: Counted
    states: dict[str, int]
    missing: int
    took_over: bool


def run(
    args: argparse.Namespace, server: sa.URL, label: str, count: int, kill_at: float | None
) -> Outcome:
    """One run in a database and a project of its own."""
    name = f"scaleout_{os.getpid()}_{count}_{'kill' if kill_at is not None else 'all'}"
    with database(server, name) as url, tempfile.TemporaryDirectory(prefix="scaleout-") as tmp:
        folder = Path(tmp)
        sink = CountingSink(folder)
        try:
            made = make_project(
                folder / "project", args.recipients, 20, sink.port, args.concurrency, url
            )
            try:
                return drain(args, label, made, sink, count, kill_at)
            finally:
                made.store.close()
        finally:
            if sink.process.poll() is None:
                sink.process.kill()
                sink.process.wait()


def drain(
    args: argparse.Namespace,
    label: str,
    made: Project,
    sink: CountingSink,
    count: int,
    kill_at: float | None,
) -> Outcome:
    """Make the digest, start `count` workers together, SIGKILL the first one at `kill_at`
    of the messages if given, and wait for all of them to end."""
    store = made.store
    created = outbox.create(made.config, store, LIST, made.period, utcnow())
    assert created.digest is not None and created.new
    command = [sys.executable, "-m", "syndicate", "--config", str(made.config_file), "worker"]
    command += ["--once", "--concurrency", str(args.concurrency)]
    sink_cpu = sink.cpu()
    workers: list[Worker] = []
    begin = time.perf_counter()
    for number in range(count):
        log = made.root / f"worker{number + 1}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=made.root, stdout=out, stderr=subprocess.STDOUT)
        workers.append(Worker(process, log, time.perf_counter()))
    victim = workers[0] if kill_at is not None else None
    while True:
        for worker in workers:
            if worker.status is None:
                worker.watch()
        if all([w.reap() for w in workers]):  # noqa: C419 (reap every one, every time)
            break
        if victim is not None and not victim.killed and victim.status is None:
            assert kill_at is not None
            if sink.messages() >= kill_at * args.recipients:
                os.kill(victim.process.pid, signal.SIGKILL)
                victim.killed = True
        time.sleep(0.05)
    seconds = max(w.ended for w in workers) - begin
    sink_cpu = sink.cpu() - sink_cpu
    summary = sink.stop()
    with store.connect() as conn:
        states = {s: n for s, n in store_digests.counts(conn, created.digest.id).items() if n}
        query = (
            sa.select(deliveries.c.worker, sa.func.count())
            .where(deliveries.c.state == "sent")
            .group_by(deliveries.c.worker)
        )
        by_worker: dict[str | None, int] = {row[0]: row[1] for row in conn.execute(query)}
    logs = []
    for worker in workers:
        # A worker's id is host:pid:random (store/locks.py): its rows carry it.
        worker.sent = sum(
            n for who, n in by_worker.items() if f":{worker.process.pid}:" in (who or "")
        )
        logs.append(worker.log.read_text(errors="replace"))
        if worker.status != 0 and not worker.killed:
            sys.exit(f"{label}: worker {worker.process.pid} failed ({worker.status}):\n{logs[-1]}")
    counted = Counted(summary["messages"], summary["recipients"], summary["duplicates"], sink_cpu)
    took_over = any("is gone" in log for log in logs)
    return Outcome(
        label, seconds, workers, counted, states, args.recipients - counted.recipients, took_over
    )


def report(args: argparse.Namespace, outcome: Outcome) -> bool:
    """Print the run's figures; whether its goals are met."""
    total = sum(w.sent for w in outcome.workers)
    print(
        f"{outcome.label}: {total:,} sent in {outcome.seconds:.1f} s, "
        f"{total / outcome.seconds:,.0f} msg/s in all"
    )
    for number, worker in enumerate(outcome.workers, 1):
        ran = "SIGKILLed after" if worker.killed else "ran"
        rate = worker.sent / worker.seconds if worker.seconds else 0.0
        cpu = worker.cpu / worker.sent * 1e6 if worker.sent else 0.0
        print(
            f"  worker {number}: sent {worker.sent:,}; {ran} {worker.seconds:.1f} s: "
            f"{rate:,.0f} msg/s ({cpu:.0f} µs CPU per message, peak RSS {worker.peak_rss:.0f} MB)"
        )
    sink = outcome.sink
    killed = any(w.killed for w in outcome.workers)
    goal = f"at most {args.concurrency}, the killed worker's connections" if killed else "0"
    print(
        f"  sink: {sink.messages:,} messages to {sink.recipients:,} recipients; duplicates "
        f"{sink.duplicates} (goal {goal}), missing {outcome.missing} (goal 0); sink CPU "
        f"{sink.cpu / max(1, sink.messages) * 1e6:.0f} µs/message"
    )
    states = ", ".join(f"{state} {n:,}" for state, n in outcome.states.items())
    took_over = "; a survivor sent the killed worker's rows again" if outcome.took_over else ""
    print(f"  store: {states}{took_over}")
    ok = outcome.missing == 0 and outcome.states == {"sent": args.recipients}
    ok = ok and sink.duplicates <= (args.concurrency if killed else 0)
    ok = ok and (outcome.took_over or not killed)
    print(f"  {'goals met' if ok else 'GOALS MISSED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="SMTP connections per worker")
    parser.add_argument("--kill-at", type=float, default=0.3)
    parser.add_argument("--fsync", choices=["on", "off"], default="on")
    parser.add_argument("--no-single", action="store_true", help="skip the one-worker run")
    parser.add_argument("--sink", nargs=2, metavar=("PORT", "STATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        serve_sink(int(args.sink[0]), Path(args.sink[1]))
        return
    if args.recipients < 1 or args.workers < 2 or args.concurrency < 1:
        parser.error("--recipients and --concurrency must be at least 1, --workers at least 2")
    with postgres(args.fsync == "on") as (server, described):
        print(
            f"scale-out: {args.recipients:,} deliveries of one digest; workers with "
            f"{args.concurrency} SMTP connections each; {described}; counting sink "
            f"(Python); this machine: {os.cpu_count()} cores"
        )
        plans: list[tuple[str, int, float | None]] = []
        if not args.no_single:
            plans.append(("1 worker alone", 1, None))
        plans.append((f"{args.workers} workers", args.workers, None))
        killed = f"{args.workers} workers, worker 1 SIGKILLed at {args.kill_at:.0%} of the messages"
        plans.append((killed, args.workers, args.kill_at))
        results = []
        for label, count, kill_at in plans:
            results.append(report(args, run(args, server, label, count, kill_at)))
            sys.stdout.flush()
    if not all(results):
        sys.exit(1)


if __name__ == "__main__":
    main()

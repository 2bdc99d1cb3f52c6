"""Digest delivery benchmark: syndicate's end-to-end digest send against baselines, every
figure measured in the same run against the same Postfix `smtp-sink` on 127.0.0.1.

    python benchmarks/digest.py --recipients 20000 [--releases 20] [--repeat 3] [--connections 8]

Ours: a temporary SQLite project (config, a list file of N recipients, --releases Markdown
releases ingested); timed: `outbox.create` (read the list, compile, insert one delivery row per
recipient) plus `send.deliver` (render each variant once, personalise per recipient, SMTP over
--connections connections, each result recorded in the store as the server answers). Checked
afterwards: the store says every delivery is `sent`, and the sink counted N messages.
Baselines, one recipient's copy of the same digest (same size), same sink:
  (a) stdlib smtplib, a new connection per message, sequential (how rss2email sends), on at
      most --baseline-limit messages, reported per second; it is given a fixed HELO name, so
      it does not look up this host's FQDN for every connection as plain smtplib would (in
      the baseline's favour);
  (b) Postfix's C load generator `smtp-source -d -s 50` (50 reused connections), if present.
Times are medians of --repeat rounds (ours, (a), (b) interleaved in each round, each round's
figures on stderr); the machine is shared, so compare the ratios, not the seconds. Also shown:
CPU seconds of this process and of the sink during each run, and the peak RSS of this process.
--profile FILE adds one cProfile'd run of ours (not in the medians). Needs the Debian package
`postfix` for `smtp-sink`/`smtp-source` (only these test programs are started, never the
Postfix daemon).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import resource
import smtplib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sink import HOST, Sink, require, tool

from syndicate.config import Config, load_config
from syndicate.digest import outbox, preview, schedule
from syndicate.digest.send import deliver
from syndicate.ingest import ingest
from syndicate.store import Store

LIST = "weekly"
SENDER = "press@bench.example.org"
HELO = "bench.example.org"  # given to smtplib so it does not resolve our FQDN per connection
TOPICS = {
    "trafficking": "Human trafficking",
    "syria": "Syria response",
    "climate": "Climate and migration",
    "health": "Migrant health",
    "labour": "Labour mobility",
}
WORDS = (
    "The International Organization for Migration today announced a programme with partners "
    "supporting families and local authorities with protection services."
)  # summaries of this length make a 20-release digest of about 24 KB, as measured in issue 6


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- The project: config, list file, releases; the same shape the tests build. ---


@dataclass
class Project:
    root: Path
    config: Config
    store: Store
    period: datetime
    recipients: int


def recipient(n: int) -> str:
    return f"reader{n:06d}@example.org"


def list_file(count: int) -> str:
    """Mostly bare addresses, as admins paste them; every 4th with a name, every 10th
    narrowed to one topic (a second rendered variant per topic)."""
    slugs = list(TOPICS)
    lines = ["subscribers:"]
    for n in range(count):
        if n % 10 == 0:
            lines.append(
                f"  - {{email: {recipient(n)}, name: Reader {n}, topics: [{slugs[n % 50 // 10]}]}}"
            )
        elif n % 4 == 0:
            lines.append(f"  - {{email: {recipient(n)}, name: Reader {n}}}")
        else:
            lines.append(f"  - {recipient(n)}")
    return "\n".join(lines) + "\n"


def write_releases(folder: Path, count: int, period: datetime) -> None:
    """`count` Markdown releases published in the week before `period`, each in 1–2 topics."""
    slugs = list(TOPICS)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        first, second = slugs[n % len(slugs)], slugs[(n * 3 + 1) % len(slugs)]
        published = (period - timedelta(hours=3 + n * 7)).isoformat()
        summary = f"{WORDS} Release {n} covers {first} and {second}."
        front = f"""\
            title: "Release {n}: {first} and {second} programme extended to new provinces"
            published: {published}
            dateline: Ankara
            topics: [{first}, {second}]
            summary: "{summary}"
            """
        body = f"{WORDS}\n\n{WORDS}\n"
        (folder / f"release-{n:03d}.md").write_text(
            f"---\n{textwrap.dedent(front).strip()}\n---\n{body}", encoding="utf-8"
        )


def make_project(
    root: Path, recipients: int, releases: int, port: int, connections: int
) -> Project:
    (root / "config" / "lists").mkdir(parents=True)
    topics = "".join(f"  {slug}:\n    title: {title}\n" for slug, title in TOPICS.items())
    config_file = root / "config" / "syndicate.yaml"
    config_file.write_text(
        f"""\
site:
  title: Benchmark Press Office
  base_url: https://bench.example.org/news
  language: en
  timezone: Europe/Istanbul
  output_dir: ../public
database:
  url: sqlite:///../var/bench.db
sources:
  - type: markdown
    path: ../content
topics:
{topics}smtp: {{host: {HOST}, port: {port}, connections: {connections}, timeout: 60}}
mail: {{from: "Benchmark Press <{SENDER}>", secret: bench-secret}}
lists:
  {LIST}:
    title: Weekly press digest
    schedule: "0 8 * * mon"
    timezone: Europe/Istanbul
    subscribers: lists/{LIST}.yaml
""",
        encoding="utf-8",
    )
    (root / "config" / "lists" / f"{LIST}.yaml").write_text(list_file(recipients), encoding="utf-8")
    config = load_config(config_file, environ={})
    now = utcnow()
    period = schedule.latest_fire(config, config.lists[LIST], now)
    assert period is not None
    write_releases(root / "content", releases, period)
    store = Store.open(config.database.url)
    report = ingest(config, store, now)
    if report.rejected:
        sys.exit(f"benchmark releases rejected: {report.rejected}")
    return Project(root, config, store, period, recipients)


@contextmanager
def project(recipients: int, releases: int, port: int, connections: int) -> Iterator[Project]:
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        made = make_project(Path(folder), recipients, releases, port, connections)
        try:
            yield made
        finally:
            made.store.close()


def sample_message(made: Project) -> bytes:
    """The list's full copy of the digest, personalised for one address, as the baselines
    send it: the size of every recipient's copy give or take a few bytes. (Not looked up in
    the list file: parsing it here would count in the peak RSS.)"""
    config = made.config
    since = schedule.previous_fire(config, config.lists[LIST], made.period)
    plan = outbox.current_plan(config, made.store, LIST, since, made.period)
    return preview.message(config, LIST, plan, made.period).eml


# --- The runs. ---


@dataclass(frozen=True)
class Run:
    seconds: float
    messages: int
    cpu: float = 0.0  # this process's CPU seconds during the run
    sink_cpu: float = 0.0  # the sink's
    create: float = 0.0  # of `seconds`, in outbox.create

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@contextmanager
def counted(sink: Sink, expected: int, what: str) -> Iterator[None]:
    """Check that the sink received exactly `expected` messages during the block."""
    before = sink.messages()
    yield
    got = sink.settle(before + expected) - before
    if got != expected:
        sys.exit(f"{what}: the sink received {got} messages, expected {expected}")


def ours(made: Project, sink: Sink, profile: cProfile.Profile | None = None) -> Run:
    config, store = made.config, made.store
    cpu, sink_cpu = time.process_time(), sink.cpu()
    with counted(sink, made.recipients, "syndicate"):
        if profile is not None:
            profile.enable()
        start = time.perf_counter()
        created = outbox.create(config, store, LIST, made.period, utcnow())
        middle = time.perf_counter()
        digest = created.digest
        assert digest is not None and created.new
        report = asyncio.run(deliver(config, store, digest, clock=utcnow))
        end = time.perf_counter()
        if profile is not None:
            profile.disable()
    counts = {state: n for state, n in report.counts.items() if n}
    if counts != {"sent": made.recipients}:
        sys.exit(f"syndicate: expected {made.recipients} deliveries sent, the store says {counts}")
    return Run(
        end - start,
        made.recipients,
        time.process_time() - cpu,
        sink.cpu() - sink_cpu,
        middle - start,
    )


def smtplib_one_per_connection(sink: Sink, message: bytes, count: int) -> Run:
    """Baseline (a): connect, EHLO, MAIL, RCPT, DATA, QUIT, for every message in turn."""
    cpu, sink_cpu = time.process_time(), sink.cpu()
    with counted(sink, count, "baseline (a) smtplib"):
        start = time.perf_counter()
        for n in range(count):
            with smtplib.SMTP(HOST, sink.port, local_hostname=HELO, timeout=60) as smtp:
                smtp.sendmail(SENDER, [recipient(n)], message)
        seconds = time.perf_counter() - start
    return Run(seconds, count, time.process_time() - cpu, sink.cpu() - sink_cpu)


def smtp_source(binary: str, sink: Sink, message_file: Path, count: int) -> Run:
    """Baseline (b): Postfix's C client, 50 sessions each sending many messages."""
    command = [binary, "-d", "-s", "50", "-m", str(count), "-F", str(message_file)]
    command += ["-f", SENDER, "-t", recipient(0), "-M", HELO, f"{HOST}:{sink.port}"]
    sink_cpu = sink.cpu()
    with counted(sink, count, "baseline (b) smtp-source"):
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, stderr = child.communicate()
        seconds = time.perf_counter() - start
    if child.returncode != 0:
        sys.exit(f"smtp-source failed ({child.returncode}): {stderr.decode(errors='replace')}")
    return Run(seconds, count, 0.0, sink.cpu() - sink_cpu)


# --- Reporting. ---


def median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--baseline-limit",
        type=int,
        default=20_000,
        help="baseline (a) sends at most this many messages (reported per second)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        type=Path,
        help="also profile one extra run of ours with cProfile (not in the medians); "
        "write pstats to FILE and print the top functions",
    )
    args = parser.parse_args()
    if args.recipients < 1 or args.releases < 1 or args.repeat < 1:
        parser.error("--recipients, --releases and --repeat must be at least 1")
    require("smtp-sink")
    source = tool("smtp-source")
    subset = min(args.recipients, args.baseline_limit)
    rss_start = current_rss_mb()
    ours_runs: list[Run] = []
    a_runs: list[Run] = []
    b_runs: list[Run] = []
    size = 0
    with Sink.start() as sink, tempfile.TemporaryDirectory(prefix="digest-msg-") as folder:
        message_file = Path(folder) / "message.txt"
        message = b""
        for round_number in range(args.repeat):
            with project(args.recipients, args.releases, sink.port, args.connections) as made:
                if not message:
                    message = sample_message(made)
                    size = len(message)
                    message_file.write_bytes(message.replace(b"\r\n", b"\n"))
                gc.collect()
                ours_runs.append(ours(made, sink))
            last = ours_runs[-1]
            print(
                f"round {round_number + 1}: ours {last.rate:,.0f} msg/s ({last.seconds:.1f} s)",
                end="",
                file=sys.stderr,
                flush=True,
            )
            a_runs.append(smtplib_one_per_connection(sink, message, subset))
            print(f", (a) {a_runs[-1].rate:,.0f} msg/s", end="", file=sys.stderr, flush=True)
            if source is not None:
                b_runs.append(smtp_source(source, sink, message_file, args.recipients))
                print(f", (b) {b_runs[-1].rate:,.0f} msg/s", end="", file=sys.stderr)
            print(file=sys.stderr)
        peak = peak_rss_mb()
        if args.profile is not None:
            profile = cProfile.Profile()
            with project(args.recipients, args.releases, sink.port, args.connections) as made:
                ours(made, sink, profile)
            profile.dump_stats(args.profile)
            stats = pstats.Stats(profile, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)

    ours_rate = median(ours_runs, lambda r: r.rate)
    a_rate = median(a_runs, lambda r: r.rate)
    seconds = median(ours_runs, lambda r: r.seconds)
    create = median(ours_runs, lambda r: r.create)
    print(
        f"recipients={args.recipients} releases={args.releases} connections={args.connections} "
        f"(median of {args.repeat}, this machine: {os.cpu_count()} cores); "
        f"message {size / 1024:.1f} KiB"
    )
    print(
        f"syndicate digest (create + render + send + record): {ours_rate:7,.0f} msg/s  "
        f"({seconds:.1f} s, of which create {create:.1f} s; "
        f"CPU client {median(ours_runs, lambda r: r.cpu):.1f} s, "
        f"sink {median(ours_runs, lambda r: r.sink_cpu):.1f} s)"
    )
    note = f", on {subset:,} of {args.recipients:,} messages" if subset < args.recipients else ""
    print(
        f"baseline (a) smtplib, new connection per message:    {a_rate:7,.0f} msg/s  "
        f"({median(a_runs, lambda r: r.seconds):.1f} s{note}; "
        f"CPU client {median(a_runs, lambda r: r.cpu):.1f} s, "
        f"sink {median(a_runs, lambda r: r.sink_cpu):.1f} s)"
    )
    ratios = f"ratio ours/(a): {ours_rate / a_rate:.2f}x"
    if b_runs:
        b_rate = median(b_runs, lambda r: r.rate)
        print(
            f"baseline (b) smtp-source -d -s 50:                    {b_rate:7,.0f} msg/s  "
            f"({median(b_runs, lambda r: r.seconds):.1f} s; "
            f"CPU sink {median(b_runs, lambda r: r.sink_cpu):.1f} s)"
        )
        ratios += f"   ours/(b): {ours_rate / b_rate:.2f}x"
    else:
        print("baseline (b) smtp-source: not found (Debian package postfix); skipped")
    print(ratios)
    print(
        f"peak RSS of this process: {peak:.0f} MB (after imports {rss_start:.0f} MB; "
        "the baselines add next to nothing)"
    )


if __name__ == "__main__":
    main()

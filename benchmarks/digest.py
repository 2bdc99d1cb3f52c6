"""Digest delivery benchmark: syndicate's end-to-end digest send against baselines, every
figure measured in the same run against the same Postfix `smtp-sink` on 127.0.0.1.

    python benchmarks/digest.py [--recipients 10000,100000] [--releases 20] [--repeat 3]
                                [--connections 16] [--baseline-limit 20000] [--profile FILE]

Ours: a temporary SQLite project (config, a list file of N recipients, --releases Markdown
releases ingested), made by this process; then, timed in a fresh child process (so that its
peak RSS is this run's alone): `outbox.create` (read the list, compile, insert one delivery
row per recipient) plus a worker that sends the digest as `send.deliver` does (render each
variant once, personalise per recipient, SMTP over --connections connections, each result
committed to the store before that connection sends its next message). Checked afterwards:
the store says every delivery is `sent`, and the sink counted N messages.
Baselines, one recipient's copy of the same digest (same size), same sink:
  (a) stdlib smtplib, a new connection per message, sequential (how rss2email sends), on at
      most --baseline-limit messages, reported per second; it is given a fixed HELO name, so
      it does not look up this host's FQDN for every connection as plain smtplib would (in
      the baseline's favour);
  (b) Postfix's C load generator `smtp-source -d -s 50` (50 reused connections), if present.
Each size in --recipients (comma-separated) is run --repeat rounds, ours, (a) and (b)
interleaved in each round (each round's figures on stderr); times are medians. The machine
may be shared, so compare the ratios and the CPU per message, not the seconds. Also shown:
CPU per message of our child process (all its threads, user + system) and of the sink, the
group commits (results per commit), and the peak RSS of each size's runs (median and largest
of its rounds) with the ratio of the largest size's median to the smallest's. --profile FILE
adds one cProfile'd run of ours at the largest size (not in the medians). Needs the Debian package
`postfix` for `smtp-sink`/`smtp-source` (only these test programs are started, never the
Postfix daemon).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
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
from syndicate.digest.worker import Worker, status
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
    config_file: Path
    config: Config
    store: Store
    period: datetime
    recipients: int


def recipient(n: int) -> str:
    return f"reader{n:06d}@example.org"


def write_list_file(path: Path, count: int) -> None:
    """Mostly bare addresses, as admins paste them; every 4th with a name, every 10th
    narrowed to one topic (a second rendered variant per topic)."""
    slugs = list(TOPICS)
    with path.open("w", encoding="utf-8") as out:
        out.write("subscribers:\n")
        for n in range(count):
            if n % 10 == 0:
                topic = slugs[n % 50 // 10]
                out.write(f"  - {{email: {recipient(n)}, name: Reader {n}, topics: [{topic}]}}\n")
            elif n % 4 == 0:
                out.write(f"  - {{email: {recipient(n)}, name: Reader {n}}}\n")
            else:
                out.write(f"  - {recipient(n)}\n")


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
    root: Path,
    recipients: int,
    releases: int,
    port: int,
    connections: int,
    database: str = "sqlite:///../var/bench.db",
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
  url: {database}
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
    write_list_file(root / "config" / "lists" / f"{LIST}.yaml", recipients)
    config = load_config(config_file, environ={})
    now = utcnow()
    period = schedule.latest_fire(config, config.lists[LIST], now)
    assert period is not None
    write_releases(root / "content", releases, period)
    store = Store.open(config.database.url)
    report = ingest(config, store, now)
    if report.rejected:
        sys.exit(f"benchmark releases rejected: {report.rejected}")
    return Project(root, config_file, config, store, period, recipients)


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
    send it: the size of every recipient's copy give or take a few bytes."""
    config = made.config
    since = schedule.previous_fire(config, config.lists[LIST], made.period)
    plan = outbox.current_plan(config, made.store, LIST, since, made.period)
    return preview.message(config, LIST, plan, made.period).eml


# --- Ours, in a child process. ---


def child(config_file: Path, period: datetime, profile_file: Path | None) -> None:
    """Create the digest and send it, as `syndicate digest send` would; print the figures as
    one JSON line. Everything it allocates counts in its peak RSS."""
    config = load_config(config_file, environ={})
    store = Store.open(config.database.url)
    rss_start = current_rss_mb()
    gc.collect()
    profile = cProfile.Profile() if profile_file is not None else None
    before = resource.getrusage(resource.RUSAGE_SELF)
    if profile is not None:
        profile.enable()
    start = time.perf_counter()
    created = outbox.create(config, store, LIST, period, utcnow())
    middle = time.perf_counter()
    digest = created.digest
    assert digest is not None and created.new
    worker = Worker(config, store, clock=utcnow, digests=[digest.id])
    tally = asyncio.run(worker.run(until_empty=True, wait_for_others=True))
    end = time.perf_counter()
    if profile is not None:
        profile.disable()
    after = resource.getrusage(resource.RUSAGE_SELF)
    counts = {state: n for state, n in status(store, digest).counts.items() if n}
    store.close()
    if profile is not None and profile_file is not None:
        profile.dump_stats(profile_file)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    figures = {
        "seconds": end - start,
        "create": middle - start,
        "cpu": cpu,
        "peak_rss": peak_rss_mb(),
        "rss_start": rss_start,
        "commits": tally.commits,
        "largest_commit": tally.largest_commit,
        "counts": counts,
    }
    print(json.dumps(figures))


@dataclass(frozen=True)
class Run:
    seconds: float
    messages: int
    cpu: float = 0.0  # the client's CPU seconds during the run
    sink_cpu: float = 0.0  # the sink's
    create: float = 0.0  # of `seconds`, in outbox.create
    peak_rss: float = 0.0  # MB, of our child process
    rss_start: float = 0.0  # MB, of our child process after imports
    commits: int = 0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def per_message(self, seconds: float) -> float:
        return seconds / self.messages * 1e6  # µs


@contextmanager
def counted(sink: Sink, expected: int, what: str) -> Iterator[None]:
    """Check that the sink received exactly `expected` messages during the block."""
    before = sink.messages()
    yield
    got = sink.settle(before + expected) - before
    if got != expected:
        sys.exit(f"{what}: the sink received {got} messages, expected {expected}")


def ours(made: Project, sink: Sink, profile_file: Path | None = None) -> Run:
    command = [sys.executable, __file__, "--child", str(made.config_file), made.period.isoformat()]
    if profile_file is not None:
        command += ["--profile", str(profile_file)]
    sink_cpu = sink.cpu()
    with counted(sink, made.recipients, "syndicate"):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"syndicate run failed ({done.returncode}):\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["counts"] != {"sent": made.recipients}:
        sys.exit(f"syndicate: expected {made.recipients} sent, the store says {figures['counts']}")
    return Run(
        figures["seconds"],
        made.recipients,
        figures["cpu"],
        sink.cpu() - sink_cpu,
        figures["create"],
        figures["peak_rss"],
        figures["rss_start"],
        figures["commits"],
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
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with counted(sink, count, "baseline (b) smtp-source"):
        start = time.perf_counter()
        child_process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, stderr = child_process.communicate()
        seconds = time.perf_counter() - start
    if child_process.returncode != 0:
        problem = stderr.decode(errors="replace")
        sys.exit(f"smtp-source failed ({child_process.returncode}): {problem}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return Run(seconds, count, cpu, sink.cpu() - sink_cpu)


# --- Reporting. ---


def median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, not getrusage's ru_maxrss, which a child started with
    vfork (as subprocess does) inherits from its parent's size at the exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Size:
    recipients: int
    ours: list[Run]
    a: list[Run]
    b: list[Run]
    message_size: int


def measure(args: argparse.Namespace, sink: Sink, source: str | None, recipients: int) -> Size:
    subset = min(recipients, args.baseline_limit)
    size = Size(recipients, [], [], [], 0)
    with tempfile.TemporaryDirectory(prefix="digest-msg-") as folder:
        message_file = Path(folder) / "message.txt"
        message = b""
        for round_number in range(args.repeat):
            with project(recipients, args.releases, sink.port, args.connections) as made:
                if not message:
                    message = sample_message(made)
                    size.message_size = len(message)
                    message_file.write_bytes(message.replace(b"\r\n", b"\n"))
                size.ours.append(ours(made, sink))
            last = size.ours[-1]
            print(
                f"{recipients:,} recipients, round {round_number + 1}: ours {last.rate:,.0f} msg/s "
                f"({last.seconds:.1f} s, {last.per_message(last.cpu):.0f} µs CPU/message, "
                f"peak RSS {last.peak_rss:.0f} MB)",
                end="",
                file=sys.stderr,
                flush=True,
            )
            size.a.append(smtplib_one_per_connection(sink, message, subset))
            print(f", (a) {size.a[-1].rate:,.0f} msg/s", end="", file=sys.stderr, flush=True)
            if source is not None:
                size.b.append(smtp_source(source, sink, message_file, recipients))
                print(f", (b) {size.b[-1].rate:,.0f} msg/s", end="", file=sys.stderr)
            print(file=sys.stderr)
    return size


def report(args: argparse.Namespace, size: Size) -> None:
    runs = size.ours
    rate = median(runs, lambda r: r.rate)
    a_rate = median(size.a, lambda r: r.rate)
    commits = median(runs, lambda r: r.commits)
    print(
        f"recipients={size.recipients:,} releases={args.releases} connections={args.connections} "
        f"(median of {args.repeat}; this machine: {os.cpu_count()} cores); "
        f"message {size.message_size / 1024:.1f} KiB"
    )
    print(
        f"  syndicate digest (create + render + send + record): {rate:7,.0f} msg/s  "
        f"({median(runs, lambda r: r.seconds):.1f} s, of which create "
        f"{median(runs, lambda r: r.create):.1f} s; CPU per message: ours "
        f"{median(runs, lambda r: r.per_message(r.cpu)):.0f} µs, sink "
        f"{median(runs, lambda r: r.per_message(r.sink_cpu)):.0f} µs; "
        f"{commits:,.0f} group commits, {size.recipients / commits:.1f} results each)"
    )
    subset = size.a[0].messages
    note = f", on {subset:,} of {size.recipients:,} messages" if subset < size.recipients else ""
    print(
        f"  baseline (a) smtplib, new connection per message:    {a_rate:7,.0f} msg/s  "
        f"({median(size.a, lambda r: r.seconds):.1f} s{note}; CPU per message: client "
        f"{median(size.a, lambda r: r.per_message(r.cpu)):.0f} µs, sink "
        f"{median(size.a, lambda r: r.per_message(r.sink_cpu)):.0f} µs)"
    )
    ratios = f"  ratio ours/(a): {rate / a_rate:.2f}x (goal ≥ 2)"
    if size.b:
        b_rate = median(size.b, lambda r: r.rate)
        print(
            f"  baseline (b) smtp-source -d -s 50:                    {b_rate:7,.0f} msg/s  "
            f"({median(size.b, lambda r: r.seconds):.1f} s; CPU per message: client "
            f"{median(size.b, lambda r: r.per_message(r.cpu)):.0f} µs, sink "
            f"{median(size.b, lambda r: r.per_message(r.sink_cpu)):.0f} µs)"
        )
        ratios += f"   ours/(b): {rate / b_rate:.2f}x (goal ≥ 0.5)"
    else:
        print("  baseline (b) smtp-source: not found (Debian package postfix); skipped")
    print(ratios)


def peak_rss(size: Size) -> float:
    """The median of its rounds' peak RSS (each round a process of its own)."""
    return median(size.ours, lambda r: r.peak_rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipients",
        default="10000,100000",
        help="comma-separated sizes, each measured on its own (default 10000,100000)",
    )
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="our SMTP connections, as smtp.connections (default 16 here, 8 in syndicate's "
        "config; smtp-source uses 50)",
    )
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
        help="also profile one extra run of ours (the largest size) with cProfile (not in "
        "the medians); write pstats to FILE and print the top functions",
    )
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "PERIOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), datetime.fromisoformat(args.child[1]), args.profile)
        return
    try:
        sizes = [int(part.replace("_", "")) for part in args.recipients.split(",")]
    except ValueError:
        parser.error("--recipients must be numbers separated by commas, such as 10000,100000")
    if min(sizes) < 1 or args.releases < 1 or args.repeat < 1 or args.connections < 1:
        parser.error("--recipients, --releases, --repeat and --connections must be at least 1")
    require("smtp-sink")
    source = tool("smtp-source")
    measured: list[Size] = []
    with Sink.start() as sink:
        for recipients in sizes:
            measured.append(measure(args, sink, source, recipients))
        if args.profile is not None:
            largest = max(sizes)
            with project(largest, args.releases, sink.port, args.connections) as made:
                ours(made, sink, args.profile)
            stats = pstats.Stats(str(args.profile), stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
    for size in measured:
        report(args, size)
    rss = ", ".join(
        f"{s.recipients:,} recipients {peak_rss(s):.0f} MB "
        f"(largest {max(r.peak_rss for r in s.ours):.0f})"
        for s in measured
    )
    start = statistics.median(r.rss_start for s in measured for r in s.ours)
    line = f"peak RSS of our process, median of its runs: {rss}"
    if len(measured) > 1:
        smallest = min(measured, key=lambda s: s.recipients)
        biggest = max(measured, key=lambda s: s.recipients)
        ratio = peak_rss(biggest) / peak_rss(smallest)
        line += (
            f"; {biggest.recipients:,} / {smallest.recipients:,}: {ratio:.2f}x "
            "(goal: at most 1.2x, and at most 300 MB)"
        )
    print(f"{line}; after imports {start:.0f} MB")


if __name__ == "__main__":
    main()

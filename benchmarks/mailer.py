"""Mailer benchmark: `Mailer.send` alone, every figure measured in the same run against the
same Postfix `smtp-sink` on 127.0.0.1.

    python benchmarks/mailer.py [--messages 20000] [--size 25] [--connections 8] [--repeat 3]

Pre-built messages (one shared body of --size KiB, a distinct recipient each) go through
`Mailer.send` with an `on_result` that only counts, so the figure is the mailer's own cost:
no store, no rendering. Three senders, interleaved in each round:
  ours         the Mailer as deployed: pipelined MAIL/RCPT/DATA (RFC 2920), since smtp-sink
               offers PIPELINING;
  aiosmtplib   the same Mailer with pipelining=False: aiosmtplib, one command at a time (what
               the mailer did for every server before, and still does for one without it);
  smtp-source  Postfix's C client, `smtp-source -d -s CONNECTIONS` (same connection count).
Times are medians of --repeat rounds (each round on stderr); the machine may be shared, so
compare the ratios and the CPU per message rather than the seconds. CPU is this process's
(user + system) for ours and aiosmtplib, the child's for smtp-source, and the sink's.
--profile FILE adds one cProfile'd run of ours (not in the medians).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sink import HOST, Sink, require, tool

from syndicate.config import Smtp
from syndicate.mailer import Mailer, Outgoing, Result, Summary

SENDER = "press@bench.example.org"
HELO = "bench.example.org"
LINE = "The International Organization for Migration today announced a programme with p"


def recipient(n: int) -> str:
    return f"reader{n:06d}@example.org"


def body(size: int) -> bytes:
    """A message of about `size` bytes: headers, then 80-character CRLF lines, one in 200
    starting with a dot (as quoted-printable lines in a digest do: "=2E" is not required)."""
    head = (
        f"From: Press Office <{SENDER}>\r\nTo: <{recipient(0)}>\r\nSubject: Weekly digest\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    count = max(1, (size - len(head)) // (len(LINE) + 2))
    lines = [("." + LINE[1:]) if n % 200 == 199 else LINE for n in range(count)]
    return head + "".join(f"{line}\r\n" for line in lines).encode()


@dataclass(frozen=True)
class Run:
    seconds: float
    messages: int
    cpu: float  # the client's CPU seconds
    sink_cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def per_message(self, cpu: float) -> float:
        return cpu / self.messages * 1e6  # µs


def outgoing(count: int, data: bytes) -> Iterator[Outgoing]:
    for n in range(count):
        yield Outgoing(str(n), SENDER, recipient(n), data)


def counted(sink: Sink, before: int, expected: int, what: str) -> None:
    got = sink.settle(before + expected) - before
    if got != expected:
        sys.exit(f"{what}: the sink received {got} messages, expected {expected}")


def mailer_run(
    sink: Sink,
    data: bytes,
    count: int,
    connections: int,
    *,
    pipelining: bool,
    profile: cProfile.Profile | None = None,
) -> Run:
    settings = Smtp(host=HOST, port=sink.port, connections=connections, timeout=60)
    mailer = Mailer(settings, local_hostname=HELO, pipelining=pipelining)
    results = 0

    async def on_result(result: Result) -> None:
        nonlocal results
        results += 1

    before, sink_cpu = sink.messages(), sink.cpu()
    gc.collect()
    cpu = time.process_time()
    if profile is not None:
        profile.enable()
    start = time.perf_counter()
    summary = asyncio.run(mailer.send(outgoing(count, data), on_result))
    seconds = time.perf_counter() - start
    if profile is not None:
        profile.disable()
    cpu = time.process_time() - cpu
    what = "ours" if pipelining else "aiosmtplib"
    if summary != Summary(sent=count) or results != count:
        sys.exit(f"{what}: {summary}, {results} results; expected {count} sent")
    counted(sink, before, count, what)
    return Run(seconds, count, cpu, sink.cpu() - sink_cpu)


def smtp_source(binary: str, sink: Sink, file: Path, count: int, connections: int) -> Run:
    command = [binary, "-d", "-s", str(connections), "-m", str(count), "-F", str(file)]
    command += ["-f", SENDER, "-t", recipient(0), "-M", HELO, f"{HOST}:{sink.port}"]
    before, sink_cpu = sink.messages(), sink.cpu()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    child = subprocess.run(command, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        sys.exit(f"smtp-source failed ({child.returncode}): {child.stderr.decode()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    counted(sink, before, count, "smtp-source")
    return Run(seconds, count, cpu, sink.cpu() - sink_cpu)


def median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


def line(name: str, runs: list[Run]) -> str:
    rate = median(runs, lambda r: r.rate)
    cpu = median(runs, lambda r: r.per_message(r.cpu))
    sink_cpu = median(runs, lambda r: r.per_message(r.sink_cpu))
    return (
        f"{name:<38} {rate:7,.0f} msg/s  ({median(runs, lambda r: r.seconds):5.2f} s; "
        f"CPU per message: client {cpu:4.0f} µs, sink {sink_cpu:3.0f} µs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=25, help="message size in KiB")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", metavar="FILE", type=Path)
    args = parser.parse_args()
    if args.messages < 1 or args.repeat < 1 or args.connections < 1:
        parser.error("--messages, --repeat and --connections must be at least 1")
    require("smtp-sink")
    source = tool("smtp-source")
    data = body(args.size * 1024)
    ours: list[Run] = []
    plain: list[Run] = []
    c_runs: list[Run] = []
    with Sink.start() as sink, tempfile.TemporaryDirectory(prefix="mailer-bench-") as folder:
        file = Path(folder) / "message.txt"
        file.write_bytes(data.replace(b"\r\n", b"\n"))
        for number in range(args.repeat):
            ours.append(mailer_run(sink, data, args.messages, args.connections, pipelining=True))
            plain.append(mailer_run(sink, data, args.messages, args.connections, pipelining=False))
            note = f"round {number + 1}: ours {ours[-1].rate:,.0f} msg/s, "
            note += f"aiosmtplib {plain[-1].rate:,.0f} msg/s"
            if source is not None:
                c_runs.append(smtp_source(source, sink, file, args.messages, args.connections))
                note += f", smtp-source {c_runs[-1].rate:,.0f} msg/s"
            print(note, file=sys.stderr, flush=True)
        if args.profile is not None:
            profile = cProfile.Profile()
            mailer_run(
                sink, data, args.messages, args.connections, pipelining=True, profile=profile
            )
            profile.dump_stats(args.profile)
            stats = pstats.Stats(profile, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)

    print(
        f"messages={args.messages} size={len(data) / 1024:.1f} KiB "
        f"connections={args.connections} (median of {args.repeat})"
    )
    print(line("ours (Mailer, pipelined):", ours))
    print(line("Mailer on aiosmtplib (pipelining=False):", plain))
    rate = median(ours, lambda r: r.rate)
    ratios = f"ratio ours/aiosmtplib: {rate / median(plain, lambda r: r.rate):.2f}x"
    cpu = median(ours, lambda r: r.per_message(r.cpu))
    ratios += f" (CPU {median(plain, lambda r: r.per_message(r.cpu)) / cpu:.2f}x less)"
    if c_runs:
        print(line(f"smtp-source -d -s {args.connections}:", c_runs))
        ratios += f"   ours/smtp-source: {rate / median(c_runs, lambda r: r.rate):.2f}x"
    else:
        print("smtp-source: not found (Debian package postfix); skipped")
    print(ratios)


if __name__ == "__main__":
    main()

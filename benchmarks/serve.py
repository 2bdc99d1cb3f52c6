"""Serving benchmark: `syndicate serve` under `wrk` on a topic feed, 200s and 304s, against
nginx serving the same output folder, both measured in the same run on 127.0.0.1.

    python benchmarks/serve.py [--releases 50] [--duration 10] [--repeat 3] [--connections 64]

Ours: a temporary project (config, --releases Markdown releases, all in one topic), ingested
and built with the CLI (`syndicate ingest`, `syndicate build`), then served as in production
by `syndicate serve` (one process, default settings). Baseline: nginx started by
this script as a foreground process (`nginx -c CONF -p PREFIX -g 'daemon off;'`) with a
generated config, on a free port, `etag on`, one worker process (ours is one process too;
--nginx-workers changes it), access log to a file, serving the same output folder. The
system's nginx service is never started or touched. Also measured (--no-log-variant
off skips it): `syndicate serve` with its access log on (`web.access_log: true`; off by
default, since a line per request costs about half the CPU of a 304).

Measured with `wrk --latency -t THREADS -c CONNECTIONS` on the topic's RSS feed:
  200: a plain GET (identity encoding, as wrk sends no Accept-Encoding);
  304: a GET with `If-None-Match` carrying the ETag that this same server gave for the file
       (nginx's ETag, `"mtime-size"` in hex, differs from ours, a hash of the content).
Before timing, each server is checked: the 200 bodies are byte-identical, and the 304 really
is a 304. Each round runs every server back to back (200s, then 304s); figures are medians
of --repeat rounds (each round's figures on stderr). wrk shares the machine's cores with the
server under test, so compare the ratios, not the absolute figures. Also shown: the server's
CPU time per request, a figure less sensitive to a noisy machine than requests/s.

Goals (the "Scale and speed" issue): 304s at >= 0.3x nginx's requests/s, and p99 latency
<= 20 ms at 64 connections. Needs the Debian packages `wrk` and `nginx`.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sink import HOST, free_port, process_cpu

OURS, LOGGING, NGINX = "syndicate", "access-log", "nginx"
TOPIC = "trafficking"
FEED = f"/feeds/{TOPIC}.rss"
NOW = datetime.now(UTC).replace(microsecond=0)
WORDS = (
    "The International Organization for Migration today announced a programme with partners "
    "supporting families and local authorities with protection services in the region."
)
GOAL_304_RATIO = 0.3
GOAL_P99_MS = 20.0
PACKAGES = {"wrk": "wrk", "nginx": "nginx"}


def require(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        sys.exit(f"{name} not found: install the Debian package: apt-get install {PACKAGES[name]}")
    return found


# --- The project: config and releases, ingested and built by the CLI. ---


def make_project(root: Path, releases: int) -> Path:
    """A project whose topic feed holds `releases` entries; returns the config file."""
    (root / "config").mkdir(parents=True)
    (root / "content").mkdir()
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
  {TOPIC}:
    title: Human trafficking
feeds:
  limit: {releases}
  archive_size: {max(releases, 10)}
""",
        encoding="utf-8",
    )
    (root / "var").mkdir()
    for n in range(releases):
        published = (NOW - timedelta(hours=1 + n * 7)).isoformat()
        front = f"""\
            title: "Release {n}: counter-trafficking programme extended to new provinces"
            published: {published}
            dateline: Ankara
            topics: [{TOPIC}]
            """
        body = f"{WORDS}\n\n{WORDS} Release {n}.\n\n{WORDS}\n"
        (root / "content" / f"release-{n:03d}.md").write_text(
            f"---\n{textwrap.dedent(front).strip()}\n---\n{body}", encoding="utf-8"
        )
    return config_file


def syndicate(config_file: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "syndicate", "--config", str(config_file), *args]


def build(config_file: Path) -> None:
    for command in (["ingest"], ["build"]):
        done = subprocess.run(syndicate(config_file, *command), capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"syndicate {command[0]} failed:\n{done.stdout}{done.stderr}")


# --- The servers. ---


@dataclass
class Server:
    name: str
    port: int
    pids: list[int]  # processes whose CPU time counts (nginx: master and workers)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{FEED}"

    def cpu(self) -> float:
        return sum(process_cpu(pid) for pid in self.pids)


def wait_ready(process: subprocess.Popen[bytes], url: str, name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (http only)
                response.read()
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    sys.exit(f"{name} did not start:\n{log.read_text(errors='replace')[-2000:]}")


@contextmanager
def running(
    command: list[str], log: Path, environ: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environ)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: nginx's fast shutdown, uvicorn's graceful one
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def ours(config_file: Path, logs: Path, *, access_log: bool = False) -> Iterator[Server]:
    """`syndicate serve`, as in production; `access_log` turns on `web.access_log`."""
    port = free_port()
    name = LOGGING if access_log else OURS
    log = logs / f"{name}.log"
    command = syndicate(config_file, "serve", "--host", HOST, "--port", str(port))
    environ = {**os.environ, "SYNDICATE_WEB__ACCESS_LOG": "true" if access_log else "false"}
    with running(command, log, environ) as process:
        wait_ready(process, f"http://{HOST}:{port}/healthz", "syndicate serve", log)
        yield Server(name, port, [process.pid])


NGINX_CONF = """\
worker_processes {workers};
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    types {{ application/feed+json json; }}
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port};
        root {root};
        etag on;
        location / {{ expires 300s; }}
    }}
}}
"""


@contextmanager
def nginx(output_dir: Path, prefix: Path, workers: int) -> Iterator[Server]:
    binary = require("nginx")
    port = free_port()
    # As root, nginx's workers would run as 'nobody'; keep them as this user, who can read
    # the temporary folder.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers, user=user, prefix=prefix, host=HOST, port=port, root=output_dir
        ),
        encoding="utf-8",
    )
    log = prefix / "stderr.log"
    command = [binary, "-e", str(prefix / "error.log"), "-c", str(conf), "-p", str(prefix)]
    with running([*command, "-g", "daemon off;"], log) as process:
        wait_ready(process, f"http://{HOST}:{port}{FEED}", "nginx", prefix / "error.log")
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        yield Server(NGINX, port, [process.pid, *map(int, children)])


# --- Checks and wrk runs. ---


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (http only)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:  # urllib raises for a 304
        return error.code, dict(error.headers.items()), error.read()


def validator(server: Server, expected: bytes) -> str:
    """The server's own ETag for the feed, after checking its 200 body and its 304."""
    status, headers, body = fetch(server.url)
    if status != 200 or body != expected:
        sys.exit(f"{server.name}: GET {FEED} gave {status} and {len(body)} bytes, not the file")
    etag = headers.get("ETag") or headers.get("etag")
    if not etag:
        sys.exit(f"{server.name}: no ETag on {FEED}")
    status, _, body = fetch(server.url, {"If-None-Match": etag})
    if status != 304 or body:
        sys.exit(f"{server.name}: If-None-Match {etag} gave {status}, not an empty 304")
    return etag


@dataclass(frozen=True)
class Run:
    rate: float  # requests/s
    p99_ms: float
    requests: int
    cpu: float  # the server's CPU seconds during the run
    errors: str  # wrk's socket errors and non-2xx/3xx count, if any

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else 0.0


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_P99 = re.compile(r"^\s*99(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_ERRORS = re.compile(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", re.MULTILINE)


def wrk(server: Server, *, etag: str | None, seconds: float, connections: int, threads: int) -> Run:
    command = [require("wrk"), "--latency", f"-t{threads}", f"-c{connections}"]
    command += [f"-d{seconds:g}s", "--timeout", "5s"]
    if etag is not None:
        command += ["-H", f"If-None-Match: {etag}"]
    cpu = server.cpu()
    done = subprocess.run([*command, server.url], capture_output=True, text=True)
    cpu = server.cpu() - cpu
    out = done.stdout
    rate, p99, total = _RATE.search(out), _P99.search(out), _TOTAL.search(out)
    if done.returncode != 0 or rate is None or p99 is None or total is None:
        sys.exit(f"wrk failed ({done.returncode}):\n{out}{done.stderr}")
    return Run(
        float(rate[1]),
        float(p99[1]) * _UNITS[p99[2]],
        int(total[1]),
        cpu,
        "; ".join(line.strip() for line in _ERRORS.findall(out)),
    )


# --- Reporting. ---


def median(runs: list[Run], field: str) -> float:
    return statistics.median(float(getattr(run, field)) for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=50, help="entries in the topic feed")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument(
        "--no-log-variant",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure our server with its access log on (default: yes)",
    )
    args = parser.parse_args()
    if min(args.releases, args.repeat, args.connections, args.threads, args.nginx_workers) < 1:
        parser.error("--releases, --repeat, --connections, --threads: at least 1")
    require("wrk")
    require("nginx")
    runs: dict[tuple[str, int], list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as folder, ExitStack() as stack:
        root = Path(folder)
        print(f"building {args.releases} releases in topic {TOPIC}…", file=sys.stderr)
        config_file = make_project(root, args.releases)
        build(config_file)
        output_dir = root / "public"
        expected = (output_dir / FEED.lstrip("/")).read_bytes()
        if expected.count(b"<item>") != args.releases:
            sys.exit(f"{FEED} has {expected.count(b'<item>')} entries, not {args.releases}")
        (root / "nginx").mkdir()
        servers = [stack.enter_context(ours(config_file, root))]
        if args.no_log_variant:
            servers.append(stack.enter_context(ours(config_file, root, access_log=True)))
        servers.append(stack.enter_context(nginx(output_dir, root / "nginx", args.nginx_workers)))
        etags = {server.name: validator(server, expected) for server in servers}
        for server in servers:  # warm up: caches, connections, CPU frequency
            wrk(server, etag=None, seconds=2, connections=args.connections, threads=args.threads)
        for number in range(args.repeat):
            line = []
            for status in (200, 304):
                for server in servers:
                    etag = etags[server.name] if status == 304 else None
                    run = wrk(
                        server,
                        etag=etag,
                        seconds=args.duration,
                        connections=args.connections,
                        threads=args.threads,
                    )
                    runs.setdefault((server.name, status), []).append(run)
                    line.append(
                        f"{server.name} {status}: {run.rate:,.0f}/s p99 {run.p99_ms:.1f} ms"
                        + (f" [{run.errors}]" if run.errors else "")
                    )
            print(f"round {number + 1}: " + ", ".join(line), file=sys.stderr, flush=True)
    report(args, len(expected), etags, runs)


def report(
    args: argparse.Namespace,
    size: int,
    etags: dict[str, str],
    runs: dict[tuple[str, int], list[Run]],
) -> None:
    print(
        f"GET {FEED} ({args.releases} entries, {size / 1024:.1f} KiB, identity), "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, "
        f"median of {args.repeat}; this machine: {os.cpu_count()} cores, shared with wrk"
    )
    print(f"ETags: syndicate {etags[OURS]}, nginx {etags[NGINX]}")
    labels = {
        OURS: "syndicate serve",
        LOGGING: "  same, access log on",
        NGINX: f"nginx ({args.nginx_workers} worker{'s' if args.nginx_workers > 1 else ''})",
    }
    print(
        f"{'status':6} {'server':24} {'requests/s':>11} {'p99 ms':>8} {'CPU µs/req':>11} "
        f"{'vs nginx':>9}"
    )
    for status in (200, 304):
        baseline = median(runs[(NGINX, status)], "rate")
        for name, label in labels.items():
            group = runs.get((name, status))
            if not group:
                continue
            rate = median(group, "rate")
            shown = "" if name == NGINX else f"{rate / baseline:.2f}x"
            print(
                f"{status:<6} {label:24} {rate:11,.0f} {median(group, 'p99_ms'):8.1f} "
                f"{median(group, 'cpu_us'):11.0f} {shown:>9}"
            )
    verdict = {True: "met", False: "NOT met"}
    for name in (OURS, LOGGING):
        if (name, 304) not in runs:
            continue
        ratio = median(runs[(name, 304)], "rate") / median(runs[(NGINX, 304)], "rate")
        p99 = {status: median(runs[(name, status)], "p99_ms") for status in (200, 304)}
        print(
            f"goals, {labels[name].strip()}: 304s at >= {GOAL_304_RATIO}x nginx: {ratio:.2f}x "
            f"{verdict[ratio >= GOAL_304_RATIO]}; p99 <= {GOAL_P99_MS:g} ms at "
            f"{args.connections} connections: 304 {p99[304]:.1f} ms "
            f"{verdict[p99[304] <= GOAL_P99_MS]}, 200 {p99[200]:.1f} ms "
            f"{verdict[p99[200] <= GOAL_P99_MS]}"
        )


if __name__ == "__main__":
    main()

"""Build benchmark: every topic's feeds and archives (and the whole site) for N releases,
against a naive feedgen baseline measured in the same run.

    python benchmarks/feeds.py --releases 100000 --topics 50

Prints, each the median of --repeat runs with its peak RSS:
- feeds only, full build from scratch (RSS + Atom + JSON Feed, archives) into an empty folder;
- the whole site (feeds and pages), full build from scratch, as `syndicate build --full`;
- after one new release: its upsert plus the incremental build of the whole site, in a
  running process (as `syndicate run` does) and as a `syndicate build` command;
- the naive baseline: feedgen building every feed document (current and archives) from
  scratch, RSS and Atom only, and feedgen building only each topic's current feed.

Each measured run is a forked process, so its peak RSS is its own. This machine is shared,
so compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedgen.feed import FeedGenerator

from syndicate import feeds, output, pages
from syndicate.build import build, write
from syndicate.config import Config, load_config
from syndicate.ingest.upsert import Candidate, apply
from syndicate.model import Release
from syndicate.output import snapshot
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.store.releases import Write

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LOADED = NOW - timedelta(days=1)  # when the releases were stored
BODY = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "</p>"


def config_text(root: Path, topics: int) -> str:
    lines = [
        "site:",
        "  title: Benchmark Press",
        "  base_url: https://bench.example.org",
        f"  output_dir: {root / 'public'}",
        "database:",
        f"  url: sqlite:///{root / 'bench.db'}",
        "topics:",
        *(f"  topic-{t:02d}: {{title: Topic {t}}}" for t in range(topics)),
    ]
    return "\n".join(lines) + "\n"


def make_config(root: Path, topics: int) -> Config:
    path = root / "syndicate.yaml"
    path.write_text(config_text(root, topics), encoding="utf-8")
    return load_config(path, environ={})


def release(n: int, topics: list[str], rng: random.Random) -> Release:
    return Release(
        id=f"release-{n:06d}",
        title=f"Release number {n} & its title",
        published=NOW - timedelta(minutes=n * 7),
        url=f"https://bench.example.org/releases/release-{n:06d}/",
        lang="en",
        summary=f"Summary of release {n}.",
        body_html=BODY,
        categories=tuple(sorted(rng.sample(topics, 2))),
    )


def populate(config: Config, count: int) -> None:
    rng = random.Random(5005)
    topics = list(config.topics)
    batch: list[Write] = []
    with Store.open(config.database.url) as store, store.begin() as conn:
        for n in range(count):
            batch.append(Write(release(n + 1, topics, rng), "bench", None, new=True))
            if len(batch) == 2000:
                store_releases.write(conn, batch, LOADED)
                batch.clear()
        store_releases.write(conn, batch, LOADED)


def feeds_only(config: Config, folder: Path) -> None:
    with Store.open(config.database.url) as store:
        write(folder, feeds.documents(snapshot(config, store, NOW)))


def whole_site(config: Config) -> None:
    with Store.open(config.database.url) as store:
        build(config, store, NOW, full=True)


def publish_and_build(config: Config, store: Store, n: int) -> None:
    """One release published at NOW + n seconds, upserted as ingest does, then the build."""
    now = NOW + timedelta(seconds=n)
    rng = random.Random(n)
    new = dataclasses.replace(release(10_000_000 + n, list(config.topics), rng), published=now)
    apply(store, [Candidate(new, "bench", None)], now)
    report = build(config, store, now)
    assert report.incremental, "the build after one new release was not incremental"


def naive(config: Config, out: Path, current_only: bool) -> None:
    """What a simple generator does: load, then feedgen every document anew and write it."""
    with Store.open(config.database.url) as store:
        snap = snapshot(config, store, NOW)
    settings = config.feeds
    members: dict[str, list[Release]] = {t: [] for t in ["all", *config.topics]}
    for r in snap.releases:
        for t in ("all", *r.categories):
            members[t].append(r)
    for topic, releases in members.items():
        chunks = feeds.pages(topic, None, releases, settings.limit, settings.archive_size)
        for page in chunks[:1] if current_only else chunks:
            generator = FeedGenerator()
            generator.id(f"https://bench.example.org/{topic}")
            generator.title(topic)
            generator.subtitle(topic)
            generator.link(href=f"https://bench.example.org/{topic}", rel="alternate")
            for r in page.entries:
                entry = generator.add_entry()
                entry.id(r.id)
                entry.title(r.title)
                entry.link(href=r.url)
                entry.published(r.public_from)
                entry.updated(r.updated or r.public_from)
                entry.summary(r.summary)
                entry.content(r.body_html, type="html")
            name = out / f"{topic}-{page.number or 0}"
            name.with_suffix(".rss").write_bytes(generator.rss_str())
            name.with_suffix(".atom").write_bytes(generator.atom_str())


Run = tuple[float, float, float, int]  # (seconds, user CPU, system CPU, peak RSS in bytes)


def forked(action: Callable[[], object], empty: Path | None = None) -> Run:
    """Wall time, CPU time (user, and system: mostly the file system's work) and peak RSS
    of `action` run in a child process, `empty` emptied first (not timed)."""
    if empty is not None:
        fresh(empty)
    read, written = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        code = 1
        try:
            start = time.perf_counter()
            action()
            os.write(written, repr(time.perf_counter() - start).encode())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(written)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0 or not answer:
        raise SystemExit(f"a measured run failed (status {status})")
    return float(answer), usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024


def measured(runs: list[Run]) -> Run:
    """Medians of the times, the highest peak RSS."""
    return (
        statistics.median(run[0] for run in runs),
        statistics.median(run[1] for run in runs),
        statistics.median(run[2] for run in runs),
        max(run[3] for run in runs),
    )


def fresh(folder: Path) -> Path:
    """`folder`, empty."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--releases", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = args.repeat
    # What every forked run would otherwise do first: compile the templates, hash the code.
    for template in pages._sources():
        pages._environment().get_template(template)
    output.code_version()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = make_config(root, args.topics)
        print(f"populating {args.releases:,} releases in {args.topics} topics…", file=sys.stderr)
        forked(lambda: populate(config, args.releases))
        feeds_dir, scratch = root / "feeds-only", root / "naive"
        print("feeds only, full…", file=sys.stderr)
        only = measured(
            [forked(lambda: feeds_only(config, feeds_dir), feeds_dir) for _ in range(repeat)]
        )
        print("whole site, full…", file=sys.stderr)
        output_dir = config.site.output_dir
        site = measured([forked(lambda: whole_site(config), output_dir) for _ in range(repeat)])
        print("after one new release…", file=sys.stderr)
        times = root / "incremental.txt"

        def in_process() -> None:
            with Store.open(config.database.url) as store:
                publish_and_build(config, store, 0)  # warm: the first read of the store's pages
                runs = []
                for n in range(1, repeat + 1):
                    start = time.perf_counter()
                    publish_and_build(config, store, n)
                    runs.append(time.perf_counter() - start)
            times.write_text(repr(statistics.median(runs)))

        *_, incremental_rss = forked(in_process)
        incremental = float(times.read_text())
        cli = []
        for n in range(repeat + 1, 2 * repeat + 1):
            now = NOW + timedelta(seconds=n)
            with Store.open(config.database.url) as store:
                new = release(20_000_000 + n, list(config.topics), random.Random(n))
                new = dataclasses.replace(new, published=now)
                apply(store, [Candidate(new, "bench", None)], now)
            command = [sys.executable, "-m", "syndicate", "-c", str(config.path)]
            start = time.perf_counter()
            done = subprocess.run(
                [*command, "--now", now.isoformat(), "build", "--json"],
                check=True,
                capture_output=True,
            )
            cli.append(time.perf_counter() - start)
            if not json.loads(done.stdout)["incremental"]:
                raise SystemExit("`syndicate build` after one new release was not incremental")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import syndicate.cli"], check=True)
        startup = time.perf_counter() - start
        print("naive feedgen…", file=sys.stderr)
        baseline = measured(
            [forked(lambda: naive(config, scratch, False), scratch) for _ in range(repeat)]
        )
        current = measured(
            [forked(lambda: naive(config, scratch, True), scratch) for _ in range(repeat)]
        )
    mib = 1024 * 1024

    def line(label: str, figure: Run) -> str:
        seconds, user, system, rss = figure
        cpu = f"(user {user:6.2f} s + system {system:5.2f} s)"
        return f"{label:<64} {seconds:8.2f} s {cpu}  peak RSS {rss / mib:4.0f} MiB"

    print(f"releases={args.releases} topics={args.topics} (median of {repeat})")
    print(line("feeds only, full build from scratch (RSS+Atom+JSON, archives)", only))
    print(line("whole site (feeds + pages), full build from scratch", site))
    print(
        f"{'after one new release: upsert + incremental build, in process':<64} "
        f"{incremental:8.3f} s {'':36}  peak RSS {incremental_rss / mib:4.0f} MiB"
    )
    print(
        f"{'the same as a `syndicate build` command':<64} {statistics.median(cli):8.3f} s"
        f"   (Python start-up and imports alone: {startup:.2f} s)"
    )
    print(line("baseline: naive feedgen, every document, RSS+Atom, from scratch", baseline))
    print(line("baseline: naive feedgen, current feeds only, RSS+Atom", current))
    print(f"ratio naive (every document) / feeds only full: {baseline[0] / only[0]:6.2f}x")
    print(f"ratio naive (every document) / incremental:     {baseline[0] / incremental:6.1f}x")
    print(f"ratio naive (current feeds) / incremental:      {current[0] / incremental:6.1f}x")


if __name__ == "__main__":
    main()

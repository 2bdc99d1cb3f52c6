"""Feed build benchmark: every topic's feeds and archives for N releases, against a naive
feedgen baseline (every document rebuilt from scratch and written) measured in the same run.

    python benchmarks/feeds.py --releases 100000 --topics 50

Prints: full build, incremental build after one new release, the baseline, and ratios.
Times are medians of --repeat runs; this machine is shared, so compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedgen.feed import FeedGenerator

from syndicate import feeds
from syndicate.build import write
from syndicate.config import Config
from syndicate.model import Release
from syndicate.output import snapshot
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.store.releases import Write

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
BODY = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "</p>"


def make_config(root: Path, topics: int) -> Config:
    return Config.model_validate(
        {
            "site": {
                "title": "Benchmark Press",
                "base_url": "https://bench.example.org",
                "output_dir": str(root / "public"),
            },
            "database": {"url": f"sqlite:///{root / 'bench.db'}"},
            "topics": {f"topic-{t:02d}": {"title": f"Topic {t}"} for t in range(topics)},
        }
    )


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


def populate(config: Config, count: int) -> Store:
    rng = random.Random(5005)
    topics = list(config.topics)
    store = Store.open(config.database.url)
    batch: list[Write] = []
    with store.begin() as conn:
        for n in range(count):
            batch.append(Write(release(n + 1, topics, rng), "bench", None, new=True))
            if len(batch) == 2000:
                store_releases.write(conn, batch, NOW)
                batch.clear()
        store_releases.write(conn, batch, NOW)
    return store


def ours(config: Config, store: Store, now: datetime) -> int:
    report = write(config.site.output_dir, feeds.documents(snapshot(config, store, now)))
    return len(report.written)


def naive(config: Config, store: Store, out: Path) -> int:
    """What a simple generator does: load, then feedgen every document anew and write it."""
    snap = snapshot(config, store, NOW)
    settings = config.feeds
    written = 0
    for topic in snap.topics:
        for page in feeds.pages(
            topic, None, snap.topic(topic), settings.limit, settings.archive_size
        ):
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
            written += 2
    return written


def timed(action: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = make_config(root, args.topics)
        print(f"populating {args.releases:,} releases in {args.topics} topics…", file=sys.stderr)
        store = populate(config, args.releases)

        def full() -> None:
            (root / "public" / ".manifest.json").unlink(missing_ok=True)
            ours(config, store, NOW)

        full_time = timed(full, args.repeat)

        def incremental() -> None:
            rng = random.Random()
            new = release(10_000_000 + rng.randrange(10**6), list(config.topics), rng)
            new = dataclasses.replace(new, published=NOW)  # the newest release
            with store.begin() as conn:
                store_releases.write(conn, [Write(new, "bench", None, new=True)], NOW)
            ours(config, store, NOW + timedelta(seconds=1))

        incremental_time = timed(incremental, args.repeat)
        baseline_dir = root / "naive"
        baseline_dir.mkdir()
        baseline_time = timed(lambda: naive(config, store, baseline_dir), args.repeat)
        store.close()
    print(f"releases={args.releases} topics={args.topics} (median of {args.repeat})")
    print(f"syndicate full build (RSS+Atom+JSON, archives): {full_time:8.2f} s")
    print(f"syndicate after one new release:               {incremental_time:8.2f} s")
    print(f"baseline: naive feedgen, RSS+Atom, from scratch: {baseline_time:8.2f} s")
    print(f"ratio baseline/full:        {baseline_time / full_time:6.2f}x")
    print(f"ratio baseline/incremental: {baseline_time / incremental_time:6.2f}x")


if __name__ == "__main__":
    main()

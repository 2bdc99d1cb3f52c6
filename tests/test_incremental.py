"""Incremental builds (syndicate/changes.py): after any sequence of changes to the store, the
output folder, hidden manifest included, is byte for byte what a full build from scratch
makes, and the build looked only at what changed."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from syndicate import changes, feeds, pages
from syndicate.build import BuildReport, build, write
from syndicate.config import Config
from syndicate.ingest.upsert import Candidate, apply
from syndicate.model import Attachment, Release
from syndicate.output import BuildState, Noted, placement_note, snapshot
from syndicate.store import Store
from syndicate.store import releases as store_releases
from tests.conftest import BASE_CONFIG, NOW, WriteConfig

TOPICS = ["trafficking", "turkiye", "ankara", "opinion"]
BASE = "https://press.example.org/news"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file in the folder, hidden ones included, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def from_scratch(config: Config, store: Store, now: datetime, folder: Path) -> dict[str, bytes]:
    snap = snapshot(config, store, now)
    write(folder, [*feeds.documents(snap), *pages.documents(snap)])
    return tree(folder)


@pytest.fixture
def small(project: Path, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Short feeds and archives and small sitemaps: every boundary is crossed often."""
    monkeypatch.setattr(pages, "SITEMAP_SIZE", 7)
    monkeypatch.setattr(changes, "RELOAD_LIMIT", float("inf"))  # never give up on a small site
    lists = (
        "lists:\n  weekly: {title: Weekly, schedule: '0 8 * * mon', topics: [trafficking],"
        " self_service: true}\n"
    )
    (project / "config" / "lists").mkdir()
    return write_config(BASE_CONFIG + "feeds:\n  limit: 2\n  archive_size: 10\n" + lists)


class World:
    """Releases written through the store as ingest writes them, at a clock that moves on."""

    def __init__(self, store: Store, seed: int) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.now = NOW
        self.count = 0
        self.live: dict[str, Release] = {}
        self.gone: dict[str, Release] = {}
        self.languages = ["en"]

    def release(self, published: datetime, **changes: object) -> Release:
        self.count += 1
        rng = self.rng
        rid = f"r{self.count:03d}"
        base = Release(
            id=rid,
            title=f"Release {self.count} & co",
            published=published,
            url=f"{BASE}/releases/{rid}/",
            lang=rng.choice(self.languages),
            summary=f"Summary {self.count}.",
            body_html=f"<p>Body {self.count}.</p>",
            categories=tuple(t for t in TOPICS if rng.random() < 0.4),
            attachments=(
                (Attachment(f"{BASE}/{rid}.pdf", "application/pdf", 10),)
                if rng.random() < 0.2
                else ()
            ),
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def put(self, release: Release) -> None:
        apply(self.store, [Candidate(release, "test", f"{release.id}.md")], self.now)
        with self.store.connect() as conn:
            stored = store_releases.get(conn, release.id, TOPICS)
        assert stored is not None
        (self.gone if stored.retracted else self.live)[release.id] = stored
        (self.live if stored.retracted else self.gone).pop(release.id, None)

    def pick(self) -> Release | None:
        return (
            self.rng.choice(sorted(self.live.values(), key=lambda r: r.id)) if self.live else None
        )

    # --- the changes -------------------------------------------------------------------------

    def publish(self) -> None:
        self.put(self.release(self.now))

    def backdate(self) -> None:
        self.put(self.release(self.now - timedelta(days=self.rng.randrange(1, 30))))

    def embargo(self) -> None:
        lift = self.now + timedelta(minutes=self.rng.randrange(5, 90))
        self.put(self.release(self.now - timedelta(days=2), embargo=lift))

    def edit(self) -> None:
        if (old := self.pick()) is not None:
            self.put(dataclasses.replace(old, title=old.title + " (corrected)", updated=None))

    def retopic(self) -> None:
        if (old := self.pick()) is not None:
            topics = tuple(t for t in TOPICS if self.rng.random() < 0.5)
            self.put(dataclasses.replace(old, categories=topics))

    def relanguage(self) -> None:
        if (old := self.pick()) is not None:
            self.put(dataclasses.replace(old, lang=self.rng.choice(self.languages)))

    def retract(self) -> None:
        if (old := self.pick()) is not None:
            with self.store.begin() as conn:
                store_releases.retract(conn, [old.id], self.now)
            self.gone[old.id] = self.live.pop(old.id)

    def restore(self) -> None:
        if self.gone:
            old = self.rng.choice(sorted(self.gone.values(), key=lambda r: r.id))
            self.put(dataclasses.replace(old, retracted=False))

    def reclassify(self) -> None:
        if (old := self.pick()) is not None:
            with self.store.begin() as conn:
                store_releases.set_categories(conn, {old.id: ("opinion",)}, self.now)
            self.live[old.id] = dataclasses.replace(old, categories=("opinion",))

    def nothing(self) -> None:
        pass


CHANGES: list[Callable[[World], None]] = [
    World.publish,
    World.publish,
    World.publish,
    World.backdate,
    World.embargo,
    World.edit,
    World.retopic,
    World.relanguage,
    World.retract,
    World.restore,
    World.reclassify,
    World.nothing,
]


def check_step(world: World, config: Config, tmp_path: Path, step: int) -> BuildReport:
    report = build(config, world.store, world.now)
    reference = from_scratch(config, world.store, world.now, tmp_path / f"reference-{step}")
    assert tree(config.site.output_dir) == reference, step
    return report


def run(world: World, config: Config, tmp_path: Path, steps: int) -> None:
    check_step(world, config, tmp_path, 0)
    for step in range(1, steps + 1):
        world.now += timedelta(minutes=world.rng.randrange(1, 60))
        for change in world.rng.choices(CHANGES, k=world.rng.randrange(1, 4)):
            change(world)
        assert check_step(world, config, tmp_path, step).incremental, step


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_builds_make_what_a_full_build_makes(
    small: Config, store: Store, tmp_path: Path, seed: int
) -> None:
    """New, backdated, embargoed (and lifted), edited, moved, retracted, restored and
    reclassified releases, a few at a time."""
    world = World(store, seed)
    for _ in range(24):
        world.put(world.release(NOW - timedelta(hours=world.rng.randrange(1, 2000))))
    run(world, small, tmp_path, 16)


def test_per_language_feeds_are_kept_incrementally(
    small: Config, store: Store, tmp_path: Path
) -> None:
    world = World(store, 4)
    world.languages = ["en", "tr", "ar"]
    for _ in range(24):
        world.put(world.release(NOW - timedelta(hours=world.rng.randrange(1, 2000))))
    run(world, small, tmp_path, 12)


def test_a_new_language_or_a_config_change_makes_a_full_build(
    small: Config, write_config: WriteConfig, store: Store, tmp_path: Path
) -> None:
    world = World(store, 5)
    for _ in range(5):
        world.publish()
    assert not build(small, store, NOW).incremental
    assert build(small, store, NOW).incremental
    world.now += timedelta(minutes=1)
    world.put(world.release(world.now, lang="tr"))
    assert not check_step(world, small, tmp_path, 1).incremental
    renamed = write_config(
        (small.path.read_text() + "\n").replace("title: Opinion", "title: Views")
    )
    assert not build(renamed, store, world.now).incremental
    assert build(renamed, store, world.now).incremental
    assert not build(renamed, store, world.now - timedelta(seconds=1)).incremental  # time went back


def test_an_unfinished_manifest_makes_a_full_build(
    small: Config, store: Store, tmp_path: Path
) -> None:
    world = World(store, 6)
    for _ in range(5):
        world.publish()
    build(small, store, NOW)
    (small.site.output_dir / ".manifest.json").unlink()  # a build stopped among the shards
    world.now += timedelta(minutes=1)
    world.publish()
    assert not check_step(world, small, tmp_path, 1).incremental
    assert build(small, store, world.now).incremental


def test_one_new_release_rewrites_only_its_own_files(small: Config, store: Store) -> None:
    world = World(store, 7)
    for _ in range(40):
        world.put(world.release(NOW - timedelta(hours=world.rng.randrange(1, 2000))))
    build(small, store, NOW)
    world.now += timedelta(minutes=5)
    new = world.release(world.now, categories=("opinion",))
    world.put(new)
    report = build(small, store, world.now)
    assert report.incremental
    touched = {p.split("/")[1].split(".")[0] for p in report.written if p.startswith("feeds/")}
    assert touched <= {"all", "opinion", "archive"}
    assert f"releases/{new.id}/index.html" in report.written
    assert not any("trafficking" in p for p in report.written)
    output = tree(small.site.output_dir)
    published = [p for p in output if not p.startswith(".manifest")]
    assert report.unchanged + len(report.written) == len(published)


def test_a_write_stamped_long_before_the_last_build_is_caught_the_next_day(
    small: Config, store: Store, tmp_path: Path
) -> None:
    """The one change the search misses: a write stamped more than LOOKBACK before the last
    build (an ingest run with --now in the past). The first build of each day checks the
    counts against the store, and a disagreement makes a full build."""
    world = World(store, 8)
    for _ in range(5):
        world.publish()
    build(small, store, NOW)
    world.now = NOW - timedelta(days=2)
    late = world.release(NOW - timedelta(days=3))
    world.put(late)
    same_day = build(small, store, NOW + timedelta(hours=1))
    assert same_day.incremental and f"releases/{late.id}/index.html" not in same_day.written
    world.now = NOW + timedelta(days=1)
    assert not check_step(world, small, tmp_path, 1).incremental


def test_a_manifest_time_without_its_utc_offset_reads_as_unreadable() -> None:
    """A hand-edited or foreign manifest: a time that would not compare with the store's
    makes a full build (BuildState: None; a placement note: ValueError, which the planner
    takes for "build everything"), never a TypeError in the middle of a build."""
    state = BuildState("k", NOW, NOW, {"all": {"en": 1}}, {"": None})
    assert BuildState.parse(state.note()) == state
    naive = state.note().replace(NOW.isoformat(), NOW.replace(tzinfo=None).isoformat())
    assert BuildState.parse(naive) is None
    note = placement_note(NOW, "en", ["opinion"], "hash", None)
    assert Noted.parse(note) == Noted(NOW, "en", ("opinion",))
    with pytest.raises(ValueError, match="no UTC offset"):
        Noted.parse(note.replace(NOW.isoformat(), NOW.replace(tzinfo=None).isoformat()))

"""The whole path a journalist depends on: ingest, build, serve; rebuilt as releases change."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import httpx

from syndicate.build import build
from syndicate.config import Config
from syndicate.ingest import ingest
from syndicate.store import Store
from syndicate.web import create_app
from tests.conftest import NOW, WriteConfig, write_release
from tests.localhttp import serve
from tests.webserver import running

LIFT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def add(project: Path, name: str, front: str) -> None:
    write_release(project / "content", name, front)


def sample(project: Path) -> None:
    add(project, "a.md", "title: Trafficking hotline opens\npublished: 2026-11-20")
    add(project, "b.md", "title: Op-ed on dignity\npublished: 2026-11-21\nkind: op-ed")


def entry_ids(output: Path, feed: str) -> list[str]:
    parsed = feedparser.parse((output / feed).read_bytes())
    assert not parsed.bozo
    return [e.id.rsplit(":", 1)[-1] for e in parsed.entries]


def test_publishing_one_release_rewrites_only_what_shows_it(
    project: Path, config: Config, store: Store
) -> None:
    sample(project)
    ingest(config, store, NOW)
    first = build(config, store, NOW)
    assert "feeds/trafficking.atom" in first.written and first.removed == []
    add(project, "c.md", "title: Opinion, once more\npublished: 2026-11-25\nkind: statement")
    ingest(config, store, NOW)
    second = build(config, store, NOW)
    feeds = {p for p in second.written if p.startswith("feeds/")}
    assert feeds == {f"feeds/{t}.{f}" for t in ("all", "opinion") for f in ("rss", "atom", "json")}
    assert "releases/c/index.html" in second.written
    assert not any("trafficking" in p for p in second.written)
    assert second.unchanged > 0


def test_an_unchanged_rebuild_writes_nothing(project: Path, config: Config, store: Store) -> None:
    sample(project)
    ingest(config, store, NOW)
    build(config, store, NOW)
    again = build(config, store, NOW + timedelta(hours=5))
    assert (again.written, again.removed) == ([], [])


def test_a_retracted_release_disappears_from_every_file(
    project: Path, config: Config, store: Store
) -> None:
    sample(project)
    ingest(config, store, NOW)
    build(config, store, NOW)
    (project / "content" / "a.md").unlink()
    ingest(config, store, NOW)
    report = build(config, store, NOW)
    output = config.site.output_dir
    assert "releases/a/index.html" in report.removed
    leftovers = [p for p in output.rglob("*") if p.is_file() and b"hotline" in p.read_bytes()]
    assert leftovers == []


def test_an_embargoed_release_appears_at_its_lift_to_the_second(
    project: Path, config: Config, store: Store
) -> None:
    sample(project)
    add(
        project,
        "e.md",
        "title: Embargoed report\npublished: 2026-11-24\nembargo: 2026-11-26T15:00:00+03:00",
    )
    ingest(config, store, NOW)
    output = config.site.output_dir
    before = build(config, store, LIFT - timedelta(seconds=1))
    assert before.next_change == LIFT
    hits = [p for p in output.rglob("*") if p.is_file() and b"Embargoed" in p.read_bytes()]
    assert hits == []
    after = build(config, store, LIFT)
    assert after.next_change is None
    assert entry_ids(output, "feeds/all.atom")[0] == "e"
    assert "releases/e/index.html" in after.written


def test_served_feeds_keep_their_etag_across_rebuilds_and_answer_304(
    project: Path, config: Config, store: Store
) -> None:
    sample(project)
    ingest(config, store, NOW)
    build(config, store, NOW)
    with running(create_app(config.site.output_dir)) as url, httpx.Client(base_url=url) as web:
        first = web.get("/feeds/all.atom")
        assert first.status_code == 200
        etag = first.headers["etag"]
        build(config, store, NOW + timedelta(days=1))
        again = web.get("/feeds/all.atom", headers={"If-None-Match": etag})
        assert again.status_code == 304
        add(project, "c.md", "title: New\npublished: 2026-11-25")
        ingest(config, store, NOW)
        build(config, store, NOW)
        changed = web.get("/feeds/all.atom", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert feedparser.parse(changed.content).entries[0].title == "New"


def test_websub_hubs_hear_of_changed_current_feeds_only(
    project: Path, write_config: WriteConfig, store: Store
) -> None:
    sample(project)
    with serve(lambda r: (204, {}, b"")) as hub:
        text = (project / "config" / "syndicate.yaml").read_text()
        config = write_config(text + f"feeds:\n  websub_hubs: ['{hub.url}/hub']\n")
        ingest(config, store, NOW)
        report = build(config, store, NOW)
        pinged = {parse_qs(r.body.decode())["hub.url"][0] for r in hub.requests}
        base = config.site.base_url
        assert pinged == {f"{base}/{p}" for p in report.written if p.startswith("feeds/")}
        assert f"{base}/feeds/trafficking.atom" in pinged
        hub.requests.clear()
        assert build(config, store, NOW).written == []
        assert hub.requests == []
    assert report.warnings == []


def test_an_unreachable_hub_is_a_warning_not_a_failed_build(
    project: Path, write_config: WriteConfig, store: Store
) -> None:
    sample(project)
    with serve(lambda r: (204, {}, b"")) as hub:
        gone = hub.url
    text = (project / "config" / "syndicate.yaml").read_text()
    config = write_config(text + f"feeds:\n  websub_hubs: ['{gone}/hub']\n")
    ingest(config, store, NOW)
    report = build(config, store, NOW)
    assert report.written and report.warnings
    assert all(w.startswith(f"WebSub hub {gone}/hub: ") for w in report.warnings)


def test_build_command_prints_what_changed_and_the_next_lift(project: Path) -> None:
    sample(project)
    add(project, "e.md", "title: Later\npublished: 2026-11-24\nembargo: 2999-01-01T09:00:00Z")

    def syndicate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syndicate", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    syndicate("ingest")
    first = syndicate("build")
    assert first.returncode == 0, first.stderr
    assert "written  feeds/all.atom" in first.stdout.splitlines()
    assert first.stdout.splitlines()[-1] == (
        "next embargo lift: 2999-01-01 12:00:00 +0300; build again then"
    )
    second = syndicate("build")
    assert [line for line in second.stdout.splitlines() if line.startswith("written")] == []
    assert ": 0 written," in second.stdout

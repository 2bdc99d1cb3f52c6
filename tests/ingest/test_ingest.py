"""The ingest pipeline end to end: real files in, a real SQLite store out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syndicate.config import Config
from syndicate.ingest import Report, check, ingest
from syndicate.ingest.upsert import Outcome
from syndicate.model import Kind
from syndicate.store import Store
from syndicate.store import releases as store_releases
from tests.conftest import NOW, ROOT, WriteConfig, write_release

LATER = NOW + timedelta(hours=1)


def content(project: Path) -> Path:
    return project / "content"


def public_ids(store: Store, now: datetime = NOW, topic: str | None = None) -> list[str]:
    with store.connect() as conn:
        return [r.id for r in store_releases.latest(conn, now, topic=topic)]


def test_first_ingest_stores_every_release_as_new(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    write_release(content(project), "b.md", "title: B\npublished: 2026-11-21")
    report = ingest(config, store, NOW)
    assert report.summary() == "2 new, 0 updated, 0 unchanged, 0 retracted, 0 rejected"
    assert public_ids(store) == ["b", "a"]


def test_reingesting_the_same_files_changes_nothing(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, NOW)
    report = ingest(config, store, LATER)
    assert report.summary() == "0 new, 0 updated, 1 unchanged, 0 retracted, 0 rejected"
    with store.connect() as conn:
        assert len(store_releases.everything(conn)) == 1
        stored = store_releases.get(conn, "a")
    assert stored is not None and stored.updated is None


def test_an_edited_release_is_updated_keeping_its_publication_time(
    project: Path, config: Config, store: Store
) -> None:
    path = write_release(content(project), "a.md", "title: A\npublished: 2026-11-20T10:00")
    ingest(config, store, NOW)
    write_release(content(project), "a.md", "title: A (corrected)\npublished: 2026-11-20T10:00")
    report = ingest(config, store, LATER)
    assert report.counts[Outcome.UPDATED] == 1
    with store.connect() as conn:
        stored = store_releases.get(conn, "a")
    assert stored is not None
    assert stored.title == "A (corrected)"
    assert stored.published == datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    assert stored.updated == LATER
    assert path.exists()


def test_a_removed_file_leaves_a_hidden_tombstone(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    gone = write_release(content(project), "b.md", "title: B\npublished: 2026-11-21")
    ingest(config, store, NOW)
    gone.unlink()
    report = ingest(config, store, LATER)
    assert report.counts[Outcome.RETRACTED] == 1
    assert public_ids(store, LATER) == ["a"]
    with store.connect() as conn:
        tombstone = store_releases.get(conn, "b")
    assert tombstone is not None and tombstone.retracted and tombstone.title == "B"


def test_a_file_put_back_restores_its_release(project: Path, config: Config, store: Store) -> None:
    path = write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, NOW)
    text = path.read_text()
    path.unlink()
    ingest(config, store, NOW)
    path.write_text(text)
    report = ingest(config, store, LATER)
    assert report.counts[Outcome.UPDATED] == 1
    assert public_ids(store, LATER) == ["a"]


def test_changing_the_id_in_a_file_retracts_the_old_id(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, NOW)
    write_release(content(project), "a.md", "id: a-renamed\ntitle: A\npublished: 2026-11-20")
    report = ingest(config, store, LATER)
    assert (report.counts[Outcome.NEW], report.counts[Outcome.RETRACTED]) == (1, 1)
    assert public_ids(store, LATER) == ["a-renamed"]


def test_a_broken_file_is_rejected_but_its_stored_release_is_not_retracted(
    project: Path, config: Config, store: Store
) -> None:
    path = write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, NOW)
    path.write_text("---\ntitle: A\npublished: not a date\n---\nBody\n")
    report = ingest(config, store, LATER)
    assert report.counts[Outcome.RETRACTED] == 0
    assert [str(p) for p in report.rejected] == [
        f"{path}:3: a: published: cannot read 'not a date' as a date; use ISO 8601, "
        "e.g. 2026-11-26 or 2026-11-26T09:00+03:00"
    ]
    assert public_ids(store, LATER) == ["a"]


def test_bad_items_are_reported_and_good_ones_still_stored(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "good.md", "title: Good\npublished: 2026-11-20")
    write_release(content(project), "untitled.md", "published: 2026-11-20")
    (content(project) / "binary.md").write_bytes(b"---\ntitle: \xff\n---\n")
    report = ingest(config, store, NOW)
    assert report.counts[Outcome.NEW] == 1
    reasons = sorted(p.reason for p in report.rejected)
    assert reasons == [
        "not valid UTF-8 (byte 11); save the file as UTF-8",
        "title: missing or empty",
    ]
    assert public_ids(store) == ["good"]


def test_embargoed_release_becomes_public_exactly_at_the_embargo(
    project: Path, config: Config, store: Store
) -> None:
    write_release(
        content(project),
        "e.md",
        "title: E\npublished: 2026-11-20\nembargo: 2026-11-26T12:00:00+03:00",
    )
    ingest(config, store, NOW)
    lift = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert public_ids(store, lift - timedelta(seconds=1)) == []
    assert public_ids(store, lift) == ["e"]
    assert public_ids(store, lift - timedelta(seconds=1), topic="all") == []


def test_future_publication_time_also_hides_a_release(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "f.md", "title: F\npublished: 2026-11-27T09:00")
    ingest(config, store, NOW)
    assert public_ids(store, NOW) == []
    assert public_ids(store, datetime(2026, 11, 27, 6, 0, tzinfo=UTC)) == ["f"]


def test_duplicate_ids_across_sources_keep_the_first_and_reject_the_second(
    project: Path, write_config: WriteConfig, store: Store
) -> None:
    write_release(content(project), "same.md", "title: From Markdown\npublished: 2026-11-20")
    (project / "export.json").write_text(
        json.dumps([{"id": "same", "title": "From JSON", "published": "2026-11-21"}])
    )
    config = write_config(
        """\
        site: {title: T, base_url: "https://press.example.org", timezone: Europe/Istanbul}
        database: {url: "sqlite:///../var/test.db"}
        sources:
          - {type: markdown, path: ../content}
          - {type: json, path: ../export.json}
        """
    )
    report = ingest(config, store, NOW)
    assert report.counts[Outcome.NEW] == 1
    [problem] = report.rejected
    assert problem.id == "same" and "duplicate id" in problem.reason
    assert "same.md" in problem.reason


def test_an_id_from_another_source_in_a_later_run_is_rejected(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "same.md", "title: From Markdown\npublished: 2026-11-20")
    ingest(config, store, NOW)
    export = project / "export.json"
    export.write_text(json.dumps([{"id": "same", "title": "Other", "published": "2026-11-21"}]))
    report = ingest(config, store, LATER, paths=[str(export)])
    [problem] = report.rejected
    assert "id already used by a release from markdown:../content" in problem.reason
    with store.connect() as conn:
        kept = store_releases.get(conn, "same")
    assert kept is not None and kept.title == "From Markdown"


def test_topics_come_from_rules_and_explicit_slugs_in_config_order(
    project: Path, config: Config, store: Store
) -> None:
    write_release(
        content(project),
        "t.md",
        "title: Counter-trafficking in Turkiye\npublished: 2026-11-20\ndateline: Ankara\n"
        "kind: op-ed\ntopics: [opinion, unknown-topic]",
    )
    report = ingest(config, store, NOW)
    assert [p.reason for p in report.warnings] == ["topics: unknown topic 'unknown-topic'"]
    with store.connect() as conn:
        stored = store_releases.get(conn, "t", order=list(config.topics))
    assert stored is not None
    assert stored.categories == ("trafficking", "turkiye", "ankara", "opinion")
    assert stored.topics == ("opinion", "unknown-topic")
    assert stored.kind is Kind.OP_ED


def test_reclassify_applies_changed_topic_rules_to_stored_releases(
    project: Path, config: Config, write_config: WriteConfig, store: Store
) -> None:
    write_release(content(project), "a.md", "title: A festival\npublished: 2026-11-20")
    ingest(config, store, NOW)
    assert public_ids(store, topic="events") == []
    text = (project / "config" / "syndicate.yaml").read_text()
    changed = write_config(text + "  events:\n    title: Events\n    keywords: [festival]\n")
    (project / "content" / "a.md").unlink()  # even releases no longer in any source
    report = ingest(changed, store, LATER, reclassify=True)
    assert report.reclassified == 1
    assert public_ids(store, NOW, topic="events") == []  # retracted: the file is gone
    with store.connect() as conn:
        stored = store_releases.get(conn, "a")
    assert stored is not None and stored.categories == ("events",)


def test_a_missing_source_is_reported_and_the_others_still_run(
    project: Path, write_config: WriteConfig, store: Store
) -> None:
    write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    config = write_config(
        """\
        site: {title: T, base_url: "https://press.example.org"}
        database: {url: "sqlite:///../var/test.db"}
        sources:
          - {type: csv, path: ../missing.csv}
          - {type: markdown, path: ../content}
        """
    )
    report = ingest(config, store, NOW)
    assert report.counts[Outcome.NEW] == 1
    [problem] = report.rejected
    assert str(problem).endswith("missing.csv: file not found: source skipped")


def test_a_single_markdown_path_keeps_the_folder_sources_origin(
    project: Path, config: Config, store: Store
) -> None:
    path = write_release(content(project), "a.md", "title: A\npublished: 2026-11-20")
    ingest(config, store, NOW, paths=[str(path)])
    report = ingest(config, store, LATER)  # the configured folder: same release, same origin
    assert report.summary() == "0 new, 0 updated, 1 unchanged, 0 retracted, 0 rejected"


def test_report_json_names_every_count_and_problem(
    project: Path, config: Config, store: Store
) -> None:
    write_release(content(project), "bad.md", "title: Bad\npublished: 2026-11-20\nkind: memo")
    data = ingest(config, store, NOW).to_dict()
    assert {k: data[k] for k in ("new", "updated", "unchanged", "retracted", "rejected")} == {
        "new": 0,
        "updated": 0,
        "unchanged": 0,
        "retracted": 0,
        "rejected": 1,
    }
    [rejection] = data["rejections"]
    assert rejection["id"] == "bad" and rejection["line"] == 4
    assert rejection["reason"].startswith("kind: 'memo' is not one of press-release, op-ed")


def test_check_reads_the_sample_content_without_a_store(config: Config) -> None:
    sample = Config.model_validate(
        {
            **config.model_dump(),
            "sources": [{"type": "markdown", "path": ROOT / "content/releases"}],
        }
    )
    rejected, warnings, count = check(sample, NOW)
    assert (rejected, warnings, count) == ([], [], 10)


def test_report_summary_lists_reclassified_only_when_asked() -> None:
    assert "reclassified" not in Report().summary()


def test_items_before_a_json_syntax_error_are_stored_and_the_error_named(
    project: Path, config: Config, store: Store
) -> None:
    export = project / "export.json"
    export.write_text(
        '[\n{"id": "one", "title": "One", "published": "2026-11-20"},\n{"id": "two",,}\n]\n'
    )
    report = ingest(config, store, NOW, paths=[str(export)])
    assert report.counts[Outcome.NEW] == 1
    [problem] = report.rejected
    assert "export.json:3: invalid JSON" in str(problem)
    assert public_ids(store) == ["one"]


def test_a_rejected_export_record_is_named_by_its_own_id(
    project: Path, config: Config, store: Store
) -> None:
    export = project / "export.json"
    export.write_text(json.dumps([{"id": "no-title", "published": "2026-11-20"}]))
    report = ingest(config, store, NOW, paths=[str(export)])
    [problem] = report.rejected
    assert (problem.id, problem.reason) == ("no-title", "title: missing or empty")

"""The admin's commands, run as a user runs them: a subprocess, real files, real SQLite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_syndicate, write_release


def run(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_syndicate(project, *args, env=env)


def releases_in(project: Path) -> None:
    content = project / "content"
    write_release(content, "a.md", "title: Anti-trafficking hotline\npublished: 2026-11-20")
    write_release(
        content,
        "b.md",
        "title: Embargoed report\npublished: 2026-11-21\nembargo: 2026-12-01T10:00:00+03:00",
    )


def test_check_ingest_releases_topics_on_a_fresh_project(project: Path) -> None:
    releases_in(project)
    check = run(project, "check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == (
        "config/syndicate.yaml: ok (4 topics, 1 sources, 0 lists, 2 releases read)"
    )
    ingest = run(project, "ingest")
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.strip() == "2 new, 0 updated, 0 unchanged, 0 retracted, 0 rejected"
    listing = run(project, "releases")
    assert listing.stdout.splitlines() == ["2026-11-20  a  Anti-trafficking hotline  (trafficking)"]
    topics = run(project, "topics", "--json")
    counts = {row["slug"]: row["releases"] for row in json.loads(topics.stdout)}
    assert counts == {"all": 1, "trafficking": 1, "turkiye": 0, "ankara": 0, "opinion": 0}


def test_second_ingest_reports_everything_unchanged(project: Path) -> None:
    releases_in(project)
    run(project, "ingest")
    again = run(project, "ingest")
    assert again.stdout.strip() == "0 new, 0 updated, 2 unchanged, 0 retracted, 0 rejected"


def test_releases_all_marks_hidden_releases(project: Path) -> None:
    releases_in(project)
    run(project, "ingest")
    listing = run(project, "releases", "--all")
    assert listing.stdout.splitlines() == [
        "2026-11-21  b  Embargoed report  [embargoed until 2026-12-01 10:00]",
        "2026-11-20  a  Anti-trafficking hotline  (trafficking)",
    ]


def test_now_option_previews_an_embargo_lift(project: Path) -> None:
    releases_in(project)
    run(project, "ingest")
    before = run(project, "--now", "2026-12-01T09:59:59+03:00", "releases", "--json")
    after = run(project, "--now", "2026-12-01T10:00:00+03:00", "releases", "--json")
    assert [r["id"] for r in json.loads(before.stdout)] == ["a"]
    assert [r["id"] for r in json.loads(after.stdout)] == ["b", "a"]


def test_releases_json_carries_every_model_field(project: Path) -> None:
    releases_in(project)
    run(project, "ingest")
    [release] = json.loads(run(project, "releases", "--json", "--topic", "trafficking").stdout)
    assert set(release) == {
        "id",
        "title",
        "published",
        "updated",
        "embargo",
        "dateline",
        "lang",
        "kind",
        "author",
        "summary",
        "body_html",
        "topics",
        "categories",
        "url",
        "attachments",
        "retracted",
        "status",
    }
    assert release["published"] == "2026-11-19T21:00:00+00:00"
    assert release["url"] == "https://press.example.org/news/releases/a/"
    assert release["status"] == "public"


def test_ingest_exits_1_and_names_each_rejected_item(project: Path) -> None:
    releases_in(project)
    write_release(project / "content", "bad.md", "title: Bad\npublished: soon")
    result = run(project, "ingest")
    assert result.returncode == 1
    assert result.stdout.strip() == "2 new, 0 updated, 0 unchanged, 0 retracted, 1 rejected"
    assert result.stderr.strip() == (
        "rejected: content/bad.md:3: bad: published: cannot read 'soon' as a date; "
        "use ISO 8601, e.g. 2026-11-26 or 2026-11-26T09:00+03:00"
    )


def test_ingest_json_prints_the_report(project: Path) -> None:
    write_release(project / "content", "bad.md", "title: Bad\npublished: soon")
    result = run(project, "ingest", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report["rejected"] == 1 and report["rejections"][0]["where"] == "content/bad.md"


def test_ingest_given_paths_reads_only_those(project: Path) -> None:
    releases_in(project)
    export = project / "export.csv"
    export.write_text("id,title,published\nfrom-csv,From CSV,2026-11-22\n", encoding="utf-8")
    result = run(project, "ingest", "export.csv")
    assert result.stdout.strip() == "1 new, 0 updated, 0 unchanged, 0 retracted, 0 rejected"


def test_check_exits_2_with_file_and_line_for_bad_content(project: Path) -> None:
    write_release(project / "content", "bad.md", "title: Bad\npublished: 2026-11-20\nkind: memo")
    result = run(project, "check")
    assert result.returncode == 2
    assert result.stderr.startswith("content/bad.md:4: bad: kind: 'memo' is not one of")


def test_a_config_error_is_one_line_and_exit_2(project: Path) -> None:
    config = project / "config" / "syndicate.yaml"
    config.write_text(config.read_text().replace("title: Test", "titel: Test"))
    result = run(project, "ingest")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "config/syndicate.yaml:2: site.titel: unknown key (did you mean 'title'?)"
    )
    assert "Traceback" not in result.stderr


def test_a_missing_config_names_the_path_and_how_to_choose_another(tmp_path: Path) -> None:
    result = run(tmp_path, "check")
    assert result.returncode == 2
    assert result.stderr.strip() == "config/syndicate.yaml: file not found"


def test_config_path_from_environment(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"SYNDICATE_CONFIG": str(project / "config" / "syndicate.yaml")}
    assert run(elsewhere, "check", env=env).returncode == 0


def test_database_url_from_environment(project: Path, tmp_path: Path) -> None:
    releases_in(project)
    db = tmp_path / "other.db"
    run(project, "ingest", env={"SYNDICATE_DATABASE__URL": f"sqlite:///{db}"})
    assert db.exists()
    assert not (project / "var" / "test.db").exists()


def test_unknown_topic_is_a_usage_error(project: Path) -> None:
    result = run(project, "releases", "--topic", "nope")
    assert result.returncode == 2
    assert "unknown topic 'nope'; known: all, trafficking, turkiye, ankara, opinion" in (
        result.stderr
    )


def test_a_bad_now_is_a_usage_error(project: Path) -> None:
    result = run(project, "--now", "yesterday", "releases")
    assert result.returncode == 2
    assert "cannot read 'yesterday' as a date" in result.stderr


def test_db_upgrade_reports_the_revision(project: Path) -> None:
    result = run(project, "db", "upgrade")
    assert result.returncode == 0
    assert result.stdout.strip() == "database at revision 0004 (latest)"


def test_a_store_failure_is_one_line_and_exit_1(project: Path) -> None:
    (project / "var").write_text("a file where the database folder should be")
    result = run(project, "releases")
    assert result.returncode == 1
    assert result.stderr.startswith("error: database sqlite:///")
    assert "Traceback" not in result.stderr

"""Markdown releases with YAML front matter: what the press office writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.errors import ContentError, SourceError
from syndicate.ingest.items import Problem, RawItem, Site
from syndicate.ingest.markdown import MAX_FILE, read_file, read_folder
from syndicate.ingest.record import build_release
from syndicate.model import Kind, Release
from tests.conftest import ROOT, write_release

SAMPLE = ROOT / "content" / "releases"


def read_item(path: Path) -> RawItem:
    result = read_file(path, path.name)
    assert isinstance(result, RawItem), result
    return result


def read_problem(path: Path) -> Problem:
    result = read_file(path, path.name)
    assert isinstance(result, Problem), result
    return result


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def sample_releases(site: Site) -> list[Release]:
    items = list(read_folder(SAMPLE, "content/releases"))
    assert all(isinstance(i, RawItem) for i in items), [i for i in items if isinstance(i, Problem)]
    return [build_release(i, site)[0] for i in items if isinstance(i, RawItem)]


# --- the sample content -----------------------------------------------------------------------


def test_sample_folder_yields_one_item_per_file(site: Site) -> None:
    items = list(read_folder(SAMPLE, "content/releases"))
    assert len(items) == len(list(SAMPLE.glob("*.md"))) == 10
    assert all(isinstance(i, RawItem) for i in items)


def test_every_sample_file_builds_into_a_release_named_after_it(site: Site) -> None:
    releases = sample_releases(site)
    assert sorted(r.id for r in releases) == sorted(p.stem for p in SAMPLE.glob("*.md"))
    assert all(r.title and r.summary and r.body_html for r in releases)


def test_sample_op_eds_have_kind_op_ed_and_an_author(site: Site) -> None:
    op_eds = [r for r in sample_releases(site) if r.kind is Kind.OP_ED]
    assert {r.id for r in op_eds} == {
        "migration-with-dignity",
        "traffickers-win-public-private-sectors-at-odds",
    }
    assert all(r.author for r in op_eds)


def test_sample_press_releases_have_a_dateline(site: Site) -> None:
    press_releases = [r for r in sample_releases(site) if r.kind is Kind.PRESS_RELEASE]
    assert len(press_releases) == 8
    assert all(r.dateline for r in press_releases)


def test_sample_dates_keep_their_offset(site: Site) -> None:
    releases = {r.id: r for r in sample_releases(site)}
    # published: 2019-06-20T10:00:00+03:00 in the file
    assert releases["iom-eu-help-vulnerable-migrants-return-home"].published.isoformat() == (
        "2019-06-20T07:00:00+00:00"
    )


# --- reading one file -------------------------------------------------------------------------


def test_front_matter_fields_and_body_are_read(tmp_path: Path) -> None:
    path = write_release(tmp_path, "a.md", "title: A\nkind: news", body="Para *one*.")
    raw = read_item(path)
    assert raw.fields["title"] == "A"
    assert raw.fields["kind"] == "news"
    assert raw.fields["body"].strip() == "Para *one*."


def test_id_defaults_to_the_slugified_file_stem(tmp_path: Path, site: Site) -> None:
    path = write_release(tmp_path, "Türkiye Report_2026.md", "title: A\npublished: 2026-11-26")
    release, _ = build_release(read_item(path), site)
    assert release.id == "turkiye-report-2026"


def test_id_in_front_matter_wins_over_the_file_stem(tmp_path: Path, site: Site) -> None:
    path = write_release(tmp_path, "a.md", "id: chosen\ntitle: A\npublished: 2026-11-26")
    assert build_release(read_item(path), site)[0].id == "chosen"


def test_body_is_rendered_as_markdown(tmp_path: Path, site: Site) -> None:
    path = write_release(tmp_path, "a.md", "title: A\npublished: 2026-11-26", body="Hi **you**")
    assert build_release(read_item(path), site)[0].body_html == "<p>Hi <strong>you</strong></p>"


def test_file_with_bom_and_crlf_line_endings_is_read(tmp_path: Path, site: Site) -> None:
    path = tmp_path / "win.md"
    text = "---\r\ntitle: Windows\r\npublished: 2026-11-26\r\nkind: news\r\n---\r\nBody.\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    raw = read_item(path)
    assert raw.field_lines["kind"] == 4
    release, _ = build_release(raw, site)
    assert (release.title, release.kind, release.summary) == ("Windows", Kind.NEWS, "Body.")


def test_field_lines_are_file_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\n# comment\ntitle: A\n\nkind: news\n---\n\nBody\n")
    raw = read_item(path)
    assert raw.field_lines["title"] == 3
    assert raw.field_lines["kind"] == 5
    assert raw.field_lines["body"] == 7


# --- folders ----------------------------------------------------------------------------------


def test_nested_folders_are_read_with_refs_relative_to_the_folder(tmp_path: Path) -> None:
    write_release(tmp_path, "top.md", "title: Top")
    write_release(tmp_path / "2026" / "11", "deep.md", "title: Deep")
    items = list(read_folder(tmp_path, "content"))
    assert [(i.where, i.ref, i.default_id) for i in items if isinstance(i, RawItem)] == [
        ("content/2026/11/deep.md", "2026/11/deep.md", "deep"),
        ("content/top.md", "top.md", "top"),
    ]


def test_files_other_than_markdown_are_ignored(tmp_path: Path) -> None:
    write_release(tmp_path, "a.md", "title: A")
    write(tmp_path, "notes.txt", "not a release")
    write(tmp_path, "draft.md.bak", "---\ntitle: B\n---\n")
    assert len(list(read_folder(tmp_path, "content"))) == 1


def test_a_bad_file_does_not_stop_the_folder(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "no front matter")
    write_release(tmp_path, "b.md", "title: B")
    kinds = [type(i) for i in read_folder(tmp_path, "content")]
    assert kinds == [Problem, RawItem]


def test_missing_folder_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such folder"):
        list(read_folder(tmp_path / "absent", "absent"))


def test_a_file_given_as_folder_raises_source_error(tmp_path: Path) -> None:
    path = write_release(tmp_path, "a.md", "title: A")
    with pytest.raises(SourceError):
        list(read_folder(path, "a.md"))


# --- errors carry the file line ---------------------------------------------------------------


def test_yaml_syntax_error_reports_the_file_line(tmp_path: Path) -> None:
    # front-matter line 3 is file line 4: the '---' line comes first
    path = write(tmp_path, "a.md", "---\ntitle: A\npublished: 2026-11-26\n  bad: indent\n---\nB\n")
    problem = read_problem(path)
    assert problem.line == 4
    assert "YAML" in problem.reason
    assert problem.id == "a"


def test_unclosed_quote_reports_the_line_where_the_quote_opens(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", '---\ntitle: A\nauthor: "Jane\npublished: 2026-11-26\n---\nB\n')
    assert read_problem(path).line == 3


def test_unclosed_bracket_reports_the_line_where_it_opens(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\ntitle: A\ntopics: [events, data\n---\nB\n")
    assert read_problem(path).line == 3


def test_impossible_date_is_rejected_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\ntitle: A\npublished: 2026-02-30\n---\nB\n")
    problem = read_problem(path)
    assert problem.line == 3
    assert "2026-02-30" in problem.reason


def test_value_yaml_cannot_build_is_rejected_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\ntitle: A\nretracted: !!bool perhaps\n---\nB\n")
    assert read_problem(path).line == 3


def test_duplicate_key_is_rejected_at_the_second_occurrence(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", "---\ntitle: A\nkind: news\ntitle: B\n---\nB\n")
    problem = read_problem(path)
    assert problem.line == 4
    assert "duplicate" in problem.reason


def test_bad_field_value_is_located_at_the_line_of_its_key(tmp_path: Path, site: Site) -> None:
    path = write(tmp_path, "a.md", "---\ntitle: A\npublished: 2026-11-26\nkind: opinion\n---\nB\n")
    raw = read_item(path)
    with pytest.raises(ContentError) as info:
        build_release(raw, site)
    assert info.value.field == "kind"
    assert raw.locate(info.value.field) == 4


def test_bad_attachment_is_located_at_the_attachments_key(tmp_path: Path, site: Site) -> None:
    front = "title: A\npublished: 2026-11-26\nattachments:\n  - url: a.pdf\n    type: pdf"
    raw = read_item(write_release(tmp_path, "a.md", front))
    with pytest.raises(ContentError) as info:
        build_release(raw, site)
    assert info.value.field == "attachments[0].type"
    assert raw.locate(info.value.field) == 4


def test_missing_title_is_located_at_the_start_of_the_file(tmp_path: Path, site: Site) -> None:
    raw = read_item(write_release(tmp_path, "a.md", "published: 2026-11-26"))
    with pytest.raises(ContentError) as info:
        build_release(raw, site)
    assert raw.locate(info.value.field) == 1


def test_invalid_utf8_reports_line_and_byte(tmp_path: Path) -> None:
    raw = b"---\ntitle: A\n---\nfine\nbad \xff here\n"
    path = tmp_path / "a.md"
    path.write_bytes(raw)
    problem = read_problem(path)
    assert problem.line == 5
    bad_byte = raw.index(b"\xff")
    assert f"byte {bad_byte}" in problem.reason
    assert "UTF-8" in problem.reason


def test_file_without_front_matter_is_rejected_at_line_1(tmp_path: Path) -> None:
    problem = read_problem(write(tmp_path, "a.md", "title: A\n\nJust text.\n"))
    assert problem.line == 1
    assert "front matter" in problem.reason


def test_unclosed_front_matter_is_rejected_at_line_1(tmp_path: Path) -> None:
    problem = read_problem(write(tmp_path, "a.md", "---\ntitle: A\n\nJust text.\n"))
    assert problem.line == 1


def test_front_matter_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    problem = read_problem(write(tmp_path, "a.md", "---\n- title\n- A\n---\nB\n"))
    assert problem.line == 2
    assert "mapping" in problem.reason


def test_body_given_as_a_field_is_rejected_at_its_line(tmp_path: Path) -> None:
    problem = read_problem(write(tmp_path, "a.md", "---\ntitle: A\nbody: Text\n---\n"))
    assert problem.line == 3
    assert problem.reason.startswith("body:")


def test_file_over_the_size_cap_is_rejected(tmp_path: Path) -> None:
    path = write_release(tmp_path, "big.md", "title: Big", body="a" * MAX_FILE)
    problem = read_problem(path)
    assert problem.id == "big"
    assert f"{MAX_FILE:,}" in problem.reason

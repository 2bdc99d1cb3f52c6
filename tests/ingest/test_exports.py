"""Bulk imports from a CMS export: JSON arrays, JSON Lines and CSV, with line numbers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from syndicate.errors import SourceError
from syndicate.ingest.exports import read_csv, read_json
from syndicate.ingest.items import Problem, RawItem, Site
from syndicate.ingest.record import build_release
from syndicate.model import Attachment

Entry = RawItem | Problem


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def lines_and_ids(entries: list[Entry]) -> list[tuple[str, int | None, object]]:
    """(kind, line, id) per entry, so a test can see what was read where."""
    return [
        ("item", e.line, e.fields.get("id"))
        if isinstance(e, RawItem)
        else ("problem", e.line, e.id)
        for e in entries
    ]


# --- JSON arrays ------------------------------------------------------------------------------


def test_json_array_items_carry_the_line_they_start_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "export.json",
        """\
        [
          {"id": "a", "title": "A"},
          {
            "id": "b",
            "title": "B"
          },

          {"id": "c", "title": "C"}
        ]
        """,
    )
    assert lines_and_ids(list(read_json(path, "export.json"))) == [
        ("item", 2, "a"),
        ("item", 3, "b"),
        ("item", 8, "c"),
    ]


def test_json_array_items_build_into_releases(tmp_path: Path, site: Site) -> None:
    record = {
        "id": "a",
        "title": "A",
        "published": "2026-11-26T09:00:00Z",
        "topics": ["events"],
        "attachments": [{"url": "a.pdf", "type": "application/pdf", "length": 5}],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps([record], indent=2), encoding="utf-8")
    (entry,) = read_json(path, "export.json")
    assert isinstance(entry, RawItem)
    release, _ = build_release(entry, site)
    assert release.topics == ("events",)
    assert release.attachments[0].length == 5


def test_json_array_element_that_is_not_an_object_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "export.json", '[\n  {"id": "a", "title": "A"},\n  "oops"\n]\n')
    entries = list(read_json(path, "export.json"))
    assert lines_and_ids(entries) == [("item", 2, "a"), ("problem", 3, None)]
    assert isinstance(entries[1], Problem)
    assert "object" in entries[1].reason


def test_invalid_json_array_raises_source_error_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "export.json", '[\n  {"id": "a", "title": "A"},\n  {"id": }\n]\n')
    with pytest.raises(SourceError, match=r"^export\.json:3: invalid JSON"):
        list(read_json(path, "export.json"))


def test_json_array_elements_without_a_comma_are_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "export.json", '[\n  {"id": "a"}\n  {"id": "b"}\n]\n')
    with pytest.raises(SourceError, match=r"^export\.json:3: invalid JSON"):
        list(read_json(path, "export.json"))


def test_json_array_with_a_stray_comma_is_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "export.json", '[\n  {"id": "a"},\n  ,\n  {"id": "b"}\n]\n')
    with pytest.raises(SourceError, match=r"^export\.json:3: invalid JSON"):
        list(read_json(path, "export.json"))


def test_json_array_with_a_trailing_comma_is_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "export.json", '[\n  {"id": "a"},\n]\n')
    with pytest.raises(SourceError, match=r"^export\.json:3: invalid JSON"):
        list(read_json(path, "export.json"))


def test_text_after_the_closing_bracket_is_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "export.json", '[\n  {"id": "a"}\n]\n{"id": "b"}\n')
    with pytest.raises(SourceError, match=r"^export\.json:4: invalid JSON"):
        list(read_json(path, "export.json"))


def test_json_array_that_is_not_closed_raises_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "export.json", '[\n  {"id": "a"}\n')
    with pytest.raises(SourceError, match=r"^export\.json:\d+: .*not closed"):
        list(read_json(path, "export.json"))


def test_empty_json_array_yields_nothing(tmp_path: Path) -> None:
    assert list(read_json(write(tmp_path, "export.json", " [ ] \n"), "export.json")) == []


# --- JSON Lines -------------------------------------------------------------------------------


def test_json_lines_items_carry_their_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "export.jsonl", '{"id": "a"}\n\n{"id": "b"}\n{"id": "c"}\n')
    assert lines_and_ids(list(read_json(path, "export.jsonl"))) == [
        ("item", 1, "a"),
        ("item", 3, "b"),
        ("item", 4, "c"),
    ]


def test_a_bad_json_line_is_one_problem_and_the_others_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, "export.jsonl", '{"id": "a"}\n{"id": "b",\n{"id": "c"}\n')
    entries = list(read_json(path, "export.jsonl"))
    assert lines_and_ids(entries) == [("item", 1, "a"), ("problem", 2, None), ("item", 3, "c")]
    assert isinstance(entries[1], Problem)
    assert "invalid JSON" in entries[1].reason


def test_a_json_line_that_is_not_an_object_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "export.jsonl", '{"id": "a"}\n[1, 2]\n')
    assert lines_and_ids(list(read_json(path, "export.jsonl"))) == [
        ("item", 1, "a"),
        ("problem", 2, None),
    ]


def test_unicode_line_separators_inside_json_strings_do_not_split_a_line(tmp_path: Path) -> None:
    # json.dumps(ensure_ascii=False) writes U+2028 and U+0085 as they are: legal inside strings.
    records = [{"id": "a", "title": "one\u2028two\x85three"}, {"id": "b", "title": "B"}]
    path = tmp_path / "export.jsonl"
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    path.write_text(text, encoding="utf-8")
    entries = list(read_json(path, "export.jsonl"))
    assert lines_and_ids(entries) == [("item", 1, "a"), ("item", 2, "b")]
    assert isinstance(entries[0], RawItem)
    assert entries[0].fields["title"] == "one\u2028two\x85three"


def test_json_lines_with_crlf_endings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b'{"id": "a"}\r\n{"id": "b"}\r\n')
    assert lines_and_ids(list(read_json(path, "export.jsonl"))) == [
        ("item", 1, "a"),
        ("item", 2, "b"),
    ]


def test_json_with_invalid_utf8_raises_source_error_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b\xff"}\n')
    with pytest.raises(SourceError, match=r"^export\.jsonl:2: not valid UTF-8"):
        list(read_json(path, "export.jsonl"))


def test_missing_export_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        list(read_json(tmp_path / "absent.json", "absent.json"))


# --- CSV --------------------------------------------------------------------------------------


def test_csv_rows_carry_their_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", "id,title\na,A\nb,B\nc,C\n")
    assert lines_and_ids(list(read_csv(path, "export.csv"))) == [
        ("item", 2, "a"),
        ("item", 3, "b"),
        ("item", 4, "c"),
    ]


def test_csv_quoted_cell_with_a_newline_keeps_later_line_numbers_right(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", 'id,summary\na,"two\nlines"\nb,one line\n')
    entries = list(read_csv(path, "export.csv"))
    assert lines_and_ids(entries) == [("item", 2, "a"), ("item", 4, "b")]
    assert isinstance(entries[0], RawItem)
    assert entries[0].fields["summary"] == "two\nlines"


def test_csv_blank_lines_do_not_shift_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", "id,title\na,A\n\n\nb,B\n")
    assert lines_and_ids(list(read_csv(path, "export.csv"))) == [
        ("item", 2, "a"),
        ("item", 5, "b"),
    ]


def test_csv_empty_cells_are_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", "id,title,summary,author\na,A,,  \n")
    (entry,) = read_csv(path, "export.csv")
    assert isinstance(entry, RawItem)
    assert dict(entry.fields) == {"id": "a", "title": "A"}


def test_csv_header_names_are_trimmed(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", "id , title\na,A\n")
    (entry,) = read_csv(path, "export.csv")
    assert isinstance(entry, RawItem)
    assert set(entry.fields) == {"id", "title"}


def test_csv_topics_cell_is_comma_separated(tmp_path: Path, site: Site) -> None:
    path = write(
        tmp_path, "export.csv", 'id,title,published,topics\na,A,2026-11-26,"events, data"\n'
    )
    (entry,) = read_csv(path, "export.csv")
    assert isinstance(entry, RawItem)
    assert build_release(entry, site)[0].topics == ("events", "data")


def test_csv_attachments_cell_is_json(tmp_path: Path, site: Site) -> None:
    cell = json.dumps([{"url": "report.pdf", "type": "application/pdf", "length": 2048}])
    quoted = '"' + cell.replace('"', '""') + '"'
    path = write(
        tmp_path, "export.csv", f"id,title,published,attachments\na,A,2026-11-26,{quoted}\n"
    )
    (entry,) = read_csv(path, "export.csv")
    assert isinstance(entry, RawItem)
    release, _ = build_release(entry, site)
    assert release.attachments == (
        Attachment("https://press.example.org/news/releases/a/report.pdf", "application/pdf", 2048),
    )


def test_csv_bad_attachments_json_is_a_problem_for_that_row_only(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "export.csv",
        'id,title,attachments\na,A,\nb,B,"[{url: nope}]"\nc,C,\n',
    )
    entries = list(read_csv(path, "export.csv"))
    assert lines_and_ids(entries) == [("item", 2, "a"), ("problem", 3, "b"), ("item", 4, "c")]
    assert isinstance(entries[1], Problem)
    assert entries[1].reason.startswith("attachments: invalid JSON")


def test_csv_row_with_more_cells_than_headers_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", "id,title\na,A\nb,B,extra\nc,C\n")
    entries = list(read_csv(path, "export.csv"))
    assert lines_and_ids(entries) == [("item", 2, "a"), ("problem", 3, "b"), ("item", 4, "c")]
    assert isinstance(entries[1], Problem)
    assert "more cells" in entries[1].reason


def test_csv_row_with_fewer_cells_leaves_the_rest_out(tmp_path: Path) -> None:
    path = write(tmp_path, "export.csv", "id,title,summary\na,A\n")
    (entry,) = read_csv(path, "export.csv")
    assert isinstance(entry, RawItem)
    assert dict(entry.fields) == {"id": "a", "title": "A"}


def test_csv_with_invalid_utf8_raises_source_error_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"id,title\na,A\nb,Caf\xe9\n")
    with pytest.raises(SourceError, match=r"^export\.csv:3: not valid UTF-8"):
        list(read_csv(path, "export.csv"))


def test_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbfid,title\na,A\n")
    (entry,) = read_csv(path, "export.csv")
    assert isinstance(entry, RawItem)
    assert dict(entry.fields) == {"id": "a", "title": "A"}


def test_empty_csv_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no header row"):
        list(read_csv(write(tmp_path, "export.csv", ""), "export.csv"))

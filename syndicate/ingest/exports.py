"""Bulk imports from a CMS export: JSON (an array, or JSON Lines) and CSV, model field names."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syndicate.errors import SourceError
from syndicate.files import read_utf8
from syndicate.ingest.items import Problem, RawItem

_decoder = json.JSONDecoder()


def read_json(path: Path, label: str) -> Iterator[RawItem | Problem]:
    text = read_utf8(path, label, SourceError)
    start = len(text) - len(text.lstrip())
    if text[start : start + 1] == "[":
        yield from _json_array(text, start + 1, label)
    else:
        yield from _json_lines(text, label)


def _skip_space(text: str, pos: int) -> int:
    """The first position at or after `pos` that is not JSON white space."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _item(obj: Any, label: str, line: int) -> RawItem | Problem:
    if not isinstance(obj, dict):
        return Problem(
            label, line, None, f"expected an object of release fields, got {type(obj).__name__}"
        )
    return RawItem(label, line, obj)


def _json_array(text: str, pos: int, label: str) -> Iterator[RawItem | Problem]:
    """Decode element by element, so each item knows its line; commas as strict as JSON's."""
    end = len(text)

    def error(at: int, message: str) -> SourceError:
        return SourceError(f"{label}:{_line_at(text, at)}: {message}")

    pos = _skip_space(text, pos)
    closed = text.startswith("]", pos)
    while not closed:
        if pos >= end:
            raise error(pos, "JSON array is not closed with ']'")
        start = pos
        try:
            obj, pos = _decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{label}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        yield _item(obj, label, _line_at(text, start))
        pos = _skip_space(text, pos)
        closed = text.startswith("]", pos)
        if not closed and pos < end:
            if text[pos] != ",":
                raise error(pos, "invalid JSON: expected ',' or ']' after an element")
            pos = _skip_space(text, pos + 1)
    pos = _skip_space(text, pos + 1)
    if pos < end:
        raise error(pos, "invalid JSON: extra data after the closing ']'")


def _json_lines(text: str, label: str) -> Iterator[RawItem | Problem]:
    # Only "\n" ends a line: U+2028 and friends may stand unescaped inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Problem(label, number, None, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield _item(obj, label, number)


# The largest cell read. csv's own default (128 KiB) is below the 1 MB a body may have, and a
# cell over the limit fails the whole file: one long release would drop the whole export.
# Cells up to this size are read, and the one release with a body over 1 MB is rejected.
MAX_CELL = 8_000_000


def read_csv(path: Path, label: str) -> Iterator[RawItem | Problem]:
    """One row per release; `attachments` is a JSON cell, `topics` comma-separated."""
    if csv.field_size_limit() < MAX_CELL:  # process-wide: raise it, never lower it
        csv.field_size_limit(MAX_CELL)
    # csv.reader rather than DictReader: DictReader skips blank lines without a trace, so
    # the line a row starts on could not be told.
    reader = csv.reader(io.StringIO(read_utf8(path, label, SourceError), newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise SourceError(f"{label}:1: no header row")
        names = [name.strip() for name in header]
        line = reader.line_num + 1
        for cells in reader:
            if cells:
                yield _row(names, cells, label, line)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise SourceError(f"{label}:{reader.line_num}: invalid CSV: {exc}") from None


def _row(names: list[str], cells: list[str], label: str, line: int) -> RawItem | Problem:
    row = dict(zip(names, cells, strict=False))
    if len(cells) > len(names):
        return Problem(label, line, row.get("id"), "more cells than header columns")
    fields: dict[str, Any] = {k: v for k, v in row.items() if v.strip()}
    if "attachments" in fields:
        try:
            fields["attachments"] = json.loads(fields["attachments"])
        except json.JSONDecodeError as exc:
            return Problem(label, line, row.get("id"), f"attachments: invalid JSON: {exc.msg}")
    return RawItem(label, line, fields)

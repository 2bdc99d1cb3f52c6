"""Markdown files with YAML front matter: how the press office writes releases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from syndicate.errors import SourceError
from syndicate.files import Utf8Error, decode_utf8
from syndicate.ingest.items import Problem, RawItem
from syndicate.text import slugify
from syndicate.yamlfile import YamlSyntaxError, parse_yaml

MAX_FILE = 2_000_000
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)


def read_folder(folder: Path, label: str) -> Iterator[RawItem | Problem]:
    """Every *.md below `folder`, in name order; refs are paths relative to the folder."""
    if not folder.is_dir():
        raise SourceError(f"{label}: no such folder")
    for path in sorted(folder.rglob("*.md")):
        ref = path.relative_to(folder).as_posix()
        yield read_file(path, f"{label.rstrip('/')}/{ref}", ref)


def read_file(path: Path, where: str, ref: str | None = None) -> RawItem | Problem:
    default_id = slugify(path.stem)
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            return Problem(
                where, None, default_id, f"file is {size:,} bytes; the limit is {MAX_FILE:,}"
            )
        raw = path.read_bytes()
    except OSError as exc:
        return Problem(where, None, default_id, f"cannot read: {exc.strerror}")
    try:
        text = decode_utf8(raw)
    except Utf8Error as exc:
        return Problem(where, exc.line, default_id, str(exc))
    match = _FRONT.match(text)
    if not match:
        return Problem(
            where,
            1,
            default_id,
            "no front matter: start the file with a '---' line, the fields, and '---'",
        )
    try:
        data = parse_yaml(match.group(1), where, first_line=2)
    except YamlSyntaxError as exc:
        return Problem(where, exc.line, default_id, exc.reason)
    if data is None:
        data = CommentedMap()
    if not isinstance(data, CommentedMap):
        return Problem(where, 2, default_id, "front matter must be a mapping of field: value")
    if "body" in data:
        return Problem(
            where,
            data.lc.key("body")[0] + 2,
            default_id,
            "body: write the body below the front matter, not as a field",
        )
    fields = {str(k): v for k, v in data.items()}
    body = text[match.end() :]
    if body.strip():
        fields["body"] = body
    lines = {str(k): data.lc.key(k)[0] + 2 for k in data}
    body_line = text[: match.end()].count("\n") + 1
    lines["body"] = body_line
    return RawItem(where, 1, fields, lines, default_id=default_id, ref=ref)

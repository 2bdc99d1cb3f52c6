"""Editing an admins' list file as text: entries are added or removed by splicing lines at the
places ruamel.yaml's round-trip parser reports, so every other byte (comments, order, quoting,
indentation, blank lines) stays exactly as the admin wrote it. Pure: text in, text out; the
caller validates the result and writes it.

A full ruamel load-modify-dump would reflow what it does not understand (indentation styles,
long lines) and, on removal, drops the comments that ruamel attaches to the removed item even
when they introduce the next one. Splicing cannot."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from syndicate.model import Subscriber
from syndicate.yamlfile import parse_yaml

_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")


class LayoutError(ValueError):
    """The file's shape does not allow a line edit; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Span:
    """One entry's lines, 0-based and inclusive: its '-' line to its last line of content
    (comment lines after it stay: they usually introduce what follows)."""

    first: int
    last: int


@dataclass(frozen=True)
class Layout:
    """Where the entries of `subscribers:` are, and how the admin indents them."""

    lines: list[str]
    spans: list[Span]
    dash: str  # the white space before each '-'
    offset: int  # columns from '-' to the entry's text ('- ' is 2)
    empty_flow: int | None  # 0-based line of 'subscribers: []', when written so
    newline: str


def split_lines(text: str) -> list[str]:
    """Lines with their endings; ''.join(split_lines(t)) == t."""
    return _LINE.findall(text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def layout(text: str, label: str) -> Layout:
    """Locate the entries; YamlSyntaxError (a ConfigError) for unparseable text, LayoutError
    for a shape this module will not edit (fix those by hand; `syndicate check` explains)."""
    data = parse_yaml(text, label)
    lines = split_lines(text)
    newline = "\r\n" if "\r\n" in text else "\n"
    if data is None or (isinstance(data, CommentedMap) and "subscribers" not in data):
        return Layout(lines, [], "  ", 2, None, newline)
    if not isinstance(data, CommentedMap):
        raise LayoutError(1, "expected 'subscribers:' at the top of the file")
    entries = data["subscribers"]
    key_line = data.lc.key("subscribers")[0]
    if not isinstance(entries, CommentedSeq):
        raise LayoutError(key_line + 1, "subscribers: expected a list of addresses")
    if len(entries) == 0:
        value_line = data.lc.value("subscribers")[0]
        if "[]" not in lines[value_line]:
            raise LayoutError(value_line + 1, "subscribers: write an empty list as '[]'")
        return Layout(lines, [], "  ", 2, value_line, newline)
    if entries.fa.flow_style():
        raise LayoutError(
            key_line + 1,
            "subscribers: written as [a, b] on one line; write one '- address' per line "
            "to edit it with this command",
        )
    spans = [_span(lines, entries, number) for number in range(len(entries))]
    if not spans:  # a block sequence always has an item; kept for safety
        return Layout(lines, [], "  ", 2, None, newline)
    dash_line = lines[spans[0].first]
    column = _indent(dash_line)
    after = dash_line[column + 1 :]
    offset = 1 + len(after) - len(after.lstrip(" ")) if after.strip() else 2
    return Layout(lines, spans, " " * column, offset, None, newline)


def _span(lines: list[str], entries: CommentedSeq, number: int) -> Span:
    first = entries.lc.item(number)[0]
    while first > 0 and not lines[first].lstrip(" ").startswith("-"):
        first -= 1  # '-' alone on its line, the entry below it
    column = _indent(lines[first])
    last = first
    for index in range(first + 1, len(lines)):
        line = lines[index]
        if not _is_content(line):
            continue
        if _indent(line) <= column:
            break
        last = index
    return Span(first, last)


def render(entry: Subscriber, dash: str = "  ", offset: int = 2, newline: str = "\n") -> str:
    """An entry as the admins write them: a bare address, or email/name/topics lines."""
    pad = dash + "-" + " " * (offset - 1)
    if not entry.name and not entry.topics:
        return f"{pad}{_scalar(entry.address)}{newline}"
    inner = dash + " " * offset
    out = [f"{pad}email: {_scalar(entry.address)}{newline}"]
    if entry.name:
        out.append(f"{inner}name: {_scalar(entry.name)}{newline}")
    if entry.topics:
        out.append(f"{inner}topics: [{', '.join(_scalar(t) for t in entry.topics)}]{newline}")
    return "".join(out)


def _scalar(value: str) -> str:
    """One YAML scalar on one line, quoted only when it must be."""
    yaml = YAML(typ="rt")
    yaml.width = 1 << 16
    buffer = io.StringIO()
    yaml.dump(value, buffer)
    out = buffer.getvalue()
    if out.endswith("\n...\n"):
        out = out[: -len("...\n")]
    return out.rstrip("\n")


def append(text: str, label: str, entries: list[Subscriber]) -> str:
    """`text` with `entries` after the last entry (every other byte unchanged)."""
    if not entries:
        return text
    where = layout(text, label)
    lines = list(where.lines)
    block = "".join(render(e, where.dash, where.offset, where.newline) for e in entries)
    if where.empty_flow is not None:
        line = lines[where.empty_flow]
        start = line.index("[]")
        head = line[:start].rstrip(" ")
        tail = line[start + 2 :]
        lines[where.empty_flow] = head + (tail if tail.strip() else where.newline) + block
        return "".join(lines)
    if where.spans:
        after = where.spans[-1].last
        if not lines[after].endswith("\n"):
            lines[after] += where.newline
        lines.insert(after + 1, block)
        return "".join(lines)
    # no 'subscribers:' yet (an empty file, or only comments): start it at the end
    body = "".join(lines)
    if body and not body.endswith("\n"):
        body += where.newline
    return f"{body}subscribers:{where.newline}{block}"


def remove(text: str, label: str, numbers: list[int]) -> str:
    """`text` without the entries at these positions of the list (0-based)."""
    where = layout(text, label)
    lines = list(where.lines)
    for number in sorted(set(numbers), reverse=True):
        span = where.spans[number]
        del lines[span.first : span.last + 1]
    remaining = len(where.spans) - len(set(numbers))
    if remaining == 0 and where.spans:
        # 'subscribers:' with nothing under it would read as null: say 'no one' explicitly
        key = _key_line(lines)
        if key is not None:
            line = lines[key]
            content, comment = _split_comment(line.rstrip("\r\n"))
            ending = line[len(line.rstrip("\r\n")) :] or where.newline
            lines[key] = f"{content.rstrip()} []{comment}{ending}"
    return "".join(lines)


def _key_line(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        if re.match(r"subscribers\s*:", line):
            return index
    return None


def _split_comment(line: str) -> tuple[str, str]:
    """'subscribers:  # who' → ('subscribers:', '  # who')."""
    match = re.search(r"\s+#", line)
    if match is None:
        return line, ""
    return line[: match.start()], line[match.start() :]

"""YAML that remembers where each value came from, so errors can name FILE:LINE."""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode

from syndicate.errors import ConfigError
from syndicate.text import one_line

Loc = tuple[str | int, ...]


class YamlSyntaxError(ConfigError):
    """Unparseable YAML; `line` (1-based) and `reason` let callers re-word it."""

    def __init__(self, origin: str, line: int, reason: str) -> None:
        super().__init__(f"{origin}:{line}: {reason}")
        self.line = line
        self.reason = reason


class _Constructor(RoundTripConstructor):
    """A value YAML cannot build ('2026-02-30', '!!int x') is a marked error at its line,
    not a bare ValueError or KeyError from deep inside ruamel."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            what = repr(node.value) if isinstance(node, ScalarNode) else "this value"
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise ConstructorError(
                problem=f"cannot read {what} as {kind}: {exc}", problem_mark=node.start_mark
            ) from None


def parse_yaml(text: str, origin: str, first_line: int = 1) -> Any:
    """Parse round-trip YAML; `first_line` shifts reported lines (front matter in a file)."""
    deep = _too_deep(text)
    if deep is not None:
        raise YamlSyntaxError(
            origin, deep + first_line, f"YAML syntax error: nested more than {MAX_DEPTH} deep"
        )
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    try:
        data = yaml.load(text)
    except RecursionError:  # nested by indentation alone, deeper than Python's stack
        raise YamlSyntaxError(
            origin, first_line, f"YAML syntax error: nested more than {MAX_DEPTH} deep"
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and mark and mark.index >= len(text.rstrip()):
            # An unclosed quote or bracket is only noticed at the end of the text; the line
            # that opened it is the one to fix.
            mark = exc.context_mark
        line = (mark.line if mark else 0) + first_line
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(origin, line, f"YAML syntax error: {problem}") from None
    except YAMLError as exc:
        message = one_line(str(exc))  # a line break would read as a second problem
        raise YamlSyntaxError(origin, first_line, f"YAML syntax error: {message}") from None
    bomb = _alias_bomb(data)
    if bomb is not None:
        raise YamlSyntaxError(
            origin,
            bomb + first_line,
            f"YAML syntax error: aliases here expand to more than {MAX_VALUES:,} values",
        )
    return data


MAX_VALUES = 1_000_000  # far more than any config, list file or front matter holds


def _alias_bomb(data: Any) -> int | None:
    """The 0-based line of the first collection whose aliases would make it hold more than
    MAX_VALUES values once expanded (a 'billion laughs'), or None. Each collection is counted
    once however many aliases name it, so this costs one pass over the parsed nodes."""
    sizes: dict[int, int] = {}
    found: list[int] = []

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a collection that contains itself counts once
        children = node.values() if isinstance(node, dict) else node
        total = 1 + sum(size(child) for child in children)
        sizes[id(node)] = total
        if total > MAX_VALUES and not found:
            found.append(getattr(getattr(node, "lc", None), "line", None) or 0)
        return total

    size(data)
    return found[0] if found else None


def shown(value: Any, limit: int = 80) -> str:
    """A short repr of a value from a file, for an error message: nested collections are
    cut short before they are walked (an alias may make one huge), strings cut at `limit`."""
    text = _shown(value, 3)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(value: Any, depth: int) -> str:
    if isinstance(value, dict):
        if depth == 0:
            return "{…}"
        items = [f"{_shown(k, 0)}: {_shown(v, depth - 1)}" for k, v in list(value.items())[:4]]
        return "{" + ", ".join(items) + (", …}" if len(value) > 4 else "}")
    if isinstance(value, list | tuple):
        if depth == 0:
            return "[…]"
        shown_items = [_shown(v, depth - 1) for v in value[:4]]
        return "[" + ", ".join(shown_items) + (", …]" if len(value) > 4 else "]")
    if isinstance(value, str):
        return repr(str(value)[:200])
    if isinstance(value, bytes):
        return repr(bytes(value[:200]))
    return repr(value)[:200]


_UNPRINTABLE_KEY = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029:]")
MAX_DEPTH = 100  # ruamel composes nodes recursively: '[' * 5000 exhausts Python's stack
_OPEN = re.compile(r"[\[{]")


def _too_deep(text: str) -> int | None:
    """The 0-based line where flow brackets ('[', '{') first nest past MAX_DEPTH, counted
    outside quotes as far as a quick scan can tell; None for any sane file. Only files with
    that many brackets are scanned."""
    if len(_OPEN.findall(text)) <= MAX_DEPTH:
        return None
    depth = line = 0
    quote = ""
    for char in text:
        if char == "\n":
            line += 1
        elif quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif char in "]}":
            depth = max(depth - 1, 0)
    return None


def line_of(data: Any, loc: Loc) -> int | None:
    """0-based line of the deepest node of `loc` that exists in `data` and came from the text
    (a key added after parsing, such as an environment override, has no line of its own)."""
    node, line = data, getattr(getattr(data, "lc", None), "line", None)
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            position = (node.lc.data or {}).get(key)
            if position is None:
                break
            line = position[0]
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0]
            node = node[key]
        elif isinstance(node, CommentedMap) and key == node.get("type"):
            continue  # pydantic puts a union's tag into the location
        else:
            break
    return line


def dotted(loc: Loc, data: Any = None) -> str:
    """'topics.trafficking.keywords[0]', without pydantic's union tags."""
    out = ""
    node = data
    for key in loc:
        if key == "[key]" or (
            isinstance(node, dict) and key not in node and key == node.get("type")
        ):
            continue
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            name = str(key)
            if _UNPRINTABLE_KEY.search(name):  # a key must not break or forge the line
                name = shown(name)
            out += f".{name}" if out else name
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            node = None
    return out

"""YAML that remembers where each value came from, so errors can name FILE:LINE."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode

from syndicate.errors import ConfigError

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
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    try:
        return yaml.load(text)
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
        raise YamlSyntaxError(origin, first_line, f"YAML error: {exc}") from None


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
            out += f".{key}" if out else str(key)
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            node = None
    return out

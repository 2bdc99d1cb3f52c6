"""What every hostile test asserts about output: HTML in which nothing can run, feeds that are
well-formed (to lxml and feedparser alike) and valid (tests/feedcheck.py), and messages whose
headers are exactly the ones intended."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import feedparser
from lxml import etree

from tests.feedcheck import check_atom, check_json, check_rss

# Attributes a browser follows or fetches: none may hold a script URL.
URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "cite", "poster", "background", "data",
        "xlink:href", "srcset", "ping", "longdesc", "usemap", "manifest", "lowsrc", "dynsrc",
        "codebase",
    }
)  # fmt: skip
# Elements that run or embed something, whatever their attributes.
ACTIVE = frozenset({"script", "iframe", "frame", "object", "embed", "applet", "base", "portal"})
_SCRIPT_URL = re.compile(r"^(?:javascript|vbscript|livescript|data:text/html)", re.I)
_IGNORED_IN_URLS = re.compile(r"[\x00-\x20\x7f]+")  # what browsers skip inside a scheme


def script_url(value: str) -> bool:
    """Whether a browser would run `value` (already entity-decoded) as a URL."""
    return bool(_SCRIPT_URL.match(_IGNORED_IN_URLS.sub("", value)))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE:
            self.problems.append(f"<{tag}> element")
        if tag == "meta" and (dict(attrs).get("http-equiv") or "").lower() == "refresh":
            self.problems.append("<meta http-equiv=refresh>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> event handler")
            if value is not None and name in URL_ATTRIBUTES and script_url(value):
                self.problems.append(f"<{tag} {name}={value!r}> script URL")
            if name == "style" and value and re.search(r"expression\(|javascript:", value, re.I):
                self.problems.append(f"<{tag} style={value!r}> script in a style")

    handle_startendtag = handle_starttag


def html_hazards(markup: str) -> list[str]:
    """Everything in an HTML document or fragment that could run: script-like elements, event
    handlers, script URLs in any attribute a browser follows. Empty when safe."""
    problems = []
    if re.search(r"<script", markup, re.I):
        problems.append("a raw <script")
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    return problems + parser.problems


def feed_problems(path: Path) -> list[str]:
    """Every violation in one feed file: not well-formed for lxml or feedparser (with entity
    expansion and network access off), or invalid by tests/feedcheck.py."""
    body = path.read_bytes()
    if path.suffix == ".json":
        return check_json(body)
    checker = {".rss": check_rss, ".atom": check_atom}[path.suffix]
    problems = list(checker(body))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        problems.append(f"lxml: {exc}")
    parsed = feedparser.parse(body)
    if parsed.bozo:
        problems.append(f"feedparser: {parsed.bozo_exception}")
    return problems


def output_problems(output: Path) -> tuple[dict[str, list[str]], int, int]:
    """Problems per file of a built site ({} when all is well), and how many feed and HTML
    files were checked."""
    found: dict[str, list[str]] = {}
    feeds = pages = 0
    for path in sorted(output.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(output).as_posix()
        problems: list[str] = []
        if relative.startswith("feeds/") and path.suffix in (".rss", ".atom", ".json"):
            feeds += 1
            problems = feed_problems(path)
        elif path.suffix == ".html":
            pages += 1
            problems = html_hazards(path.read_text(encoding="utf-8"))
        elif path.suffix in (".xml", ".opml"):
            try:
                etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False))
            except etree.XMLSyntaxError as exc:
                problems = [f"lxml: {exc}"]
        if problems:
            found[relative] = problems
    return found, feeds, pages


def parse_message(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def header_names(data: bytes) -> list[str]:
    """The names of the header fields, as the bytes have them (a folded line is no field)."""
    head = data.split(b"\r\n\r\n", 1)[0]
    return [
        line.split(b":", 1)[0].decode("ascii")
        for line in head.split(b"\r\n")
        if line and line[:1] not in (b" ", b"\t")
    ]


def header_hazards(data: bytes) -> list[str]:
    """What would let a value break out of its header: a bare CR or LF, a NUL, a line that is
    neither a field nor a continuation, a line too long for SMTP."""
    problems = []
    head = data.split(b"\r\n\r\n", 1)[0]
    if re.search(rb"\r(?!\n)|(?<!\r)\n|\x00", head):
        problems.append("a bare CR or LF, or a NUL, in the header")
    for line in head.split(b"\r\n"):
        if len(line) > 998:
            problems.append(f"a header line of {len(line)} octets")
        if line and line[:1] not in (b" ", b"\t") and not re.match(rb"^[!-9;-~]+:", line):
            problems.append(f"not a header field: {line[:60]!r}")
    return problems

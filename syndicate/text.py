"""Plain-text hygiene shared by ingest and topics: folding, slugs, control characters."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from html.parser import HTMLParser

from syndicate.errors import ContentError

# Characters XML 1.0 forbids (feeds could not carry them) plus lone surrogates.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_SPACE = re.compile(r"\s+")
# What reads as an HTML end tag ('</b>'): feed readers and validators take text holding one
# for markup.
END_TAG = re.compile(r"</[A-Za-z][A-Za-z0-9]*\s*>")
# What a URI cannot hold raw (RFC 3986): feed validators refuse such links, and a quote or a
# space ends an unquoted attribute in a careless consumer.
UNSAFE_IN_URL = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]')
# Letters that carry no combining mark under NFKD but still have a plain-Latin reading.
_FOLD_EXTRA = str.maketrans({"ı": "i", "ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe"})


def check_text(value: str, field: str) -> str:
    """Reject characters no feed or email can carry; name the field and position."""
    match = _ILLEGAL.search(value)
    if match:
        code = f"U+{ord(match.group()):04X}"
        raise ContentError(f"contains the control character {code} at {match.start()}", field)
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_text(value: str) -> str:
    """A person's name on one line, control characters (NUL…) as spaces: it goes into a
    header and a database text field, where NUL is refused."""
    return one_line(_CONTROL.sub(" ", value))


def one_line(value: str) -> str:
    """Collapse all runs of white space (including newlines) to single spaces."""
    return _SPACE.sub(" ", value).strip()


def fold(value: str) -> str:
    """Case- and accent-insensitive form: 'Türkiye' and 'TURKIYE' both give 'turkiye'."""
    decomposed = unicodedata.normalize("NFKD", value.casefold().translate(_FOLD_EXTRA))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def slugify(value: str, max_length: int = 80) -> str:
    """A stable ASCII slug: lowercase letters, digits and single hyphens."""
    ascii_text = fold(value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > max_length:
        # One character more, so a word ending exactly at the limit is kept.
        head = slug[: max_length + 1]
        slug = head.rsplit("-", 1)[0] if "-" in head else slug[:max_length]
    return slug


def slug_or_digest(value: str) -> str:
    """A slug, or for text without Latin letters or digits (an Arabic or Cyrillic title) a
    short stable digest, so every item still gets an id."""
    return slugify(value) or "r-" + hashlib.sha256(value.encode()).hexdigest()[:12]


SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")


def truncate_words(value: str, limit: int = 300) -> str:
    """Cut at the last word boundary so that, with the '…' marking the cut, at most `limit`
    characters remain; a single word longer than that is cut inside the word."""
    if len(value) <= limit:
        return value
    head = value[:limit]
    cut = head.rsplit(" ", 1)[0] if " " in head.strip() else head[: limit - 1]
    return cut.rstrip(" ,;:–—-") + "…"


class _TextExtractor(HTMLParser):
    """Collects text per block, so the first paragraph can be told from the rest."""

    _BLOCKS = frozenset(
        {
            "p",
            "div",
            "li",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
            "tr",
            "br",
            "section",
            "article",
            "ul",
            "ol",
            "table",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[list[str]] = [[]]
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.blocks.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.blocks.append([])

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.blocks[-1].append(data)

    def paragraphs(self) -> list[str]:
        texts = (one_line("".join(block)) for block in self.blocks)
        return [text for text in texts if text]


def html_paragraphs(html: str) -> list[str]:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.paragraphs()


def html_to_text(html: str) -> str:
    return " ".join(html_paragraphs(html))

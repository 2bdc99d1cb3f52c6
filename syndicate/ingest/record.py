"""Build a Release from a raw record: the one place where field values are checked."""

from __future__ import annotations

import difflib
import email.utils
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urljoin, urlsplit

from markdown_it import MarkdownIt

from syndicate.errors import ContentError
from syndicate.ingest.items import RawItem, Site
from syndicate.model import Attachment, Kind, Release
from syndicate.sanitize import safe_url, sanitize_html
from syndicate.text import (
    END_TAG,
    SLUG,
    check_text,
    html_paragraphs,
    one_line,
    slugify,
    truncate_words,
)

MAX_BODY = 1_000_000
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # dates before are implausible (W3C validator)
MAX_LINE = 1_000
FIELDS = (
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
    "body",
    "body_html",
    "topics",
    "url",
    "attachments",
    "retracted",
)
_LANG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
_markdown = MarkdownIt("commonmark", {"html": True})


def build_release(item: RawItem, site: Site) -> tuple[Release, bool]:
    """The release, and whether `published` was defaulted to now (no date in the source)."""
    fields = {k: v for k, v in item.fields.items() if v is not None and v != ""}
    for key in fields:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ContentError(f"unknown field{hint}", str(key))
    title = _plain(_required_line(fields.get("title"), "title"), "title")
    release_id = _id(fields.get("id", item.default_id))
    url = _url(fields.get("url"), f"{site.base_url}/releases/{release_id}/", "url")
    published = _when(fields.get("published"), site, "published")
    defaulted = published is None
    if published is None:
        if item.date_required:
            raise ContentError("missing; add e.g. 'published: 2026-11-26T09:00'", "published")
        published = site.now
    body_html = _body(fields, url)
    summary = _line(fields.get("summary"), "summary", limit=5_000)
    if not summary:
        paragraphs = html_paragraphs(body_html)
        summary = truncate_words(paragraphs[0]) if paragraphs else ""
    release = Release(
        id=release_id,
        title=title,
        published=published,
        updated=_when(fields.get("updated"), site, "updated"),
        embargo=_when(fields.get("embargo"), site, "embargo"),
        dateline=_plain(_line(fields.get("dateline"), "dateline"), "dateline") or None,
        lang=_lang(fields.get("lang", site.language)),
        kind=_kind(fields.get("kind", Kind.PRESS_RELEASE)),
        author=_plain(_line(fields.get("author"), "author"), "author") or None,
        summary=summary,
        body_html=body_html,
        topics=_topics(fields.get("topics", [])),
        url=url,
        attachments=_attachments(fields.get("attachments", []), url),
        retracted=_bool(fields.get("retracted", False), "retracted"),
    )
    return release, defaulted


def _text(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ContentError(f"expected text, got {type(value).__name__}", field)
    return check_text(str(value), field)


def _line(value: Any, field: str, limit: int = MAX_LINE) -> str:
    if value is None:
        return ""
    text = one_line(_text(value, field))
    if len(text) > limit:
        raise ContentError(f"is {len(text)} characters long; the limit is {limit}", field)
    return text


def _plain(text: str, field: str) -> str:
    """A title, dateline or author is plain text everywhere: one with an HTML end tag ('</b>')
    is markup pasted into the wrong field, and feeds would carry it as text that readers and
    validators take for HTML."""
    found = END_TAG.search(text)
    if found:
        raise ContentError(
            f"contains HTML ({found.group()!r}); write it as plain text, without tags", field
        )
    return text


def _required_line(value: Any, field: str) -> str:
    text = _line(value, field)
    if not text:
        raise ContentError("missing or empty", field)
    return text


def _id(value: Any) -> str:
    if value is None:
        raise ContentError("missing", "id")
    text = _text(value, "id")
    if not SLUG.match(text) or len(text) > 200:
        raise ContentError(
            f"{text!r} is not a slug (lowercase letters, digits, hyphens); e.g. {slugify(text)!r}",
            "id",
        )
    return text


def parse_when(value: Any, tz: Any) -> datetime:
    """ISO 8601 (or RFC 822) text, date or datetime → aware UTC; naive values are read in `tz`."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                moment = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                raise ContentError(
                    f"cannot read {text!r} as a date; use ISO 8601, e.g. 2026-11-26 or "
                    "2026-11-26T09:00+03:00"
                ) from None
            if moment.tzinfo is None and text.endswith("-0000"):
                moment = moment.replace(tzinfo=UTC)  # RFC 5322: UTC, local zone unknown
    else:
        raise ContentError(f"expected a date, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        raise ContentError(
            f"{moment.isoformat()} is out of range: it has no UTC time between years 1 and 9999"
        ) from None


def _when(value: Any, site: Site, field: str) -> datetime | None:
    """A release date: readable, and not before 1990, which feed readers and validators take
    for a mistake (a typo in the year, a zero date from a CMS)."""
    if value is None:
        return None
    try:
        moment = parse_when(value, site.tz)
    except ContentError as exc:
        raise ContentError(str(exc), field) from None
    if moment < EARLIEST:
        raise ContentError(
            f"{moment:%Y-%m-%d} is before {EARLIEST.year}: check the year (feed readers and "
            "validators take such dates for mistakes)",
            field,
        )
    return moment


def _url(value: Any, default: str, field: str) -> str:
    if value is None:
        return default
    text = _line(value, field)
    absolute = safe_url(urljoin(default, text))  # 'a b.pdf' → '…/a%20b.pdf'
    parts = urlsplit(absolute)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ContentError(f"{text!r} is not an http(s) URL", field)
    return absolute


def _body(fields: Mapping[str, Any], url: str) -> str:
    if "body" in fields and "body_html" in fields:
        raise ContentError("give either body (Markdown) or body_html, not both", "body_html")
    field = "body" if "body" in fields else "body_html"
    raw = _text(fields.get(field, ""), field)
    if len(raw.encode()) > MAX_BODY:
        raise ContentError(f"is {len(raw.encode()):,} bytes; the limit is {MAX_BODY:,}", field)
    html = _markdown.render(raw) if field == "body" else raw
    # The sanitiser decodes character references: '&#1;' would become a raw U+0001 here.
    return check_text(sanitize_html(html, url), field)


def _lang(value: Any) -> str:
    text = _text(value, "lang")
    if not _LANG.match(text):
        raise ContentError(f"{text!r} is not a BCP 47 language tag such as 'en' or 'tr'", "lang")
    return text


def _kind(value: Any) -> Kind:
    try:
        return Kind(_text(value, "kind"))
    except ValueError:
        choices = ", ".join(k.value for k in Kind)
        raise ContentError(f"{value!r} is not one of {choices}", "kind") from None


def _topics(value: Any) -> tuple[str, ...]:
    items = re.split(r"[,;]", value) if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ContentError("expected a list of topic slugs", "topics")
    slugs = [_text(v, "topics").strip() for v in items]
    for slug in slugs:
        if not SLUG.match(slug):
            raise ContentError(f"{slug!r} is not a topic slug", "topics")
    return tuple(dict.fromkeys(s for s in slugs if s))


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    key = str(value).strip().lower()
    if key not in words:
        raise ContentError(f"expected true or false, got {value!r}", field)
    return words[key]


def _attachments(value: Any, base: str) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise ContentError("expected a list of {url, type, length, title}", "attachments")
    return tuple(_attachment(v, base, f"attachments[{i}]") for i, v in enumerate(value))


def _attachment(value: Any, base: str, field: str) -> Attachment:
    if not isinstance(value, Mapping):
        raise ContentError("expected a mapping with url, type, length and title", field)
    unknown = set(value) - {"url", "type", "media_type", "length", "title"}
    if unknown:
        raise ContentError(f"unknown keys {sorted(unknown)}", field)
    media_type = _line(value.get("type") or value.get("media_type"), f"{field}.type")
    if not _MEDIA_TYPE.match(media_type):
        raise ContentError(
            f"expected a media type such as application/pdf, got {media_type!r}", f"{field}.type"
        )
    return Attachment(
        url=_url(_required_line(value.get("url"), f"{field}.url"), base, f"{field}.url"),
        media_type=media_type,
        length=_length(value.get("length", 0), f"{field}.length"),
        title=_line(value.get("title"), f"{field}.title"),
    )


def _length(value: Any, field: str) -> int:
    text = (
        str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    )
    if not text.isdigit():
        raise ContentError(f"expected a size in bytes, got {value!r}", field)
    return int(text)

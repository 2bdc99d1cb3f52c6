"""An upstream RSS or Atom feed (a local file, or http(s) with conditional GET)."""

from __future__ import annotations

import calendar
import html
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import feedparser
import httpx

from syndicate import __version__
from syndicate.errors import SourceError
from syndicate.ingest.items import Problem, RawItem
from syndicate.text import html_to_text, slug_or_digest

MAX_FEED = 20_000_000
USER_AGENT = f"syndicate/{__version__}"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetch result; `body` None means 304 Not Modified."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


def fetch(
    url: str, etag: str | None = None, last_modified: str | None = None, timeout: float = 30.0
) -> Fetched:
    headers = {"User-Agent": USER_AGENT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with httpx.stream(
            "GET", url, headers=headers, timeout=timeout, follow_redirects=True
        ) as response:
            if response.status_code == 304:
                return Fetched(
                    None,
                    response.headers.get("etag") or etag,
                    response.headers.get("last-modified") or last_modified,
                )
            if response.status_code != 200:
                raise SourceError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_FEED:
                    raise SourceError(f"{url}: larger than {MAX_FEED:,} bytes")
            return Fetched(
                bytes(body), response.headers.get("etag"), response.headers.get("last-modified")
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
        raise SourceError(f"{url}: {exc}") from None


def _slug_for(entry_id: str) -> str:
    """A readable stable id: the last path segment of a URL (with its query: '/news/?p=101' is
    'news-p-101'), the last part of a tag URI or URN, else the whole id."""
    parts = urlsplit(entry_id)
    tail = [unquote(s) for s in parts.path.split("/") if s] if parts.netloc else []
    candidate = tail[-1] if tail else entry_id.rsplit(":", 1)[-1]
    if tail and parts.query:
        candidate = f"{candidate} {parts.query}"
    return slug_or_digest(candidate or entry_id)


def _when(entry: Any, key: str) -> datetime | str | None:
    """The entry's date `key` ('published' or 'updated'): the moment feedparser read, else the
    text as written, so that a date nobody can read (or out of range) is rejected naming the
    field rather than taken for a missing one. `dict.get`: feedparser's own get() maps a
    missing `updated_parsed` to `published_parsed` with a DeprecationWarning."""
    parsed = dict.get(entry, f"{key}_parsed")
    if parsed:
        try:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
        except (ValueError, OverflowError, OSError):  # year 0 or 10000 after the offset
            pass
    raw = dict.get(entry, key)
    return str(raw).strip() or None if raw else None


def _text(entry: Any, key: str) -> str | None:
    value = entry.get(key)
    detail = entry.get(f"{key}_detail") or {}
    if value and "html" in str(detail.get("type", "")):
        return html_to_text(value)
    return str(value) if value else None


def _as_html(entry: Any, key: str) -> str | None:
    value = entry.get(key)
    detail = entry.get(f"{key}_detail") or {}
    if not value or "html" in str(detail.get("type", "")):
        return str(value) if value else None
    return f"<p>{html.escape(str(value))}</p>"


def _link(entry: Any) -> str | None:
    """The entry's web page; feedparser also offers a non-URL id ('urn:…', 'abc123') as link."""
    link = entry.get("link")
    return link if link and urlsplit(link).scheme in ("http", "https") else None


def parse_feed(body: bytes, label: str) -> Iterator[RawItem | Problem]:
    # A stream, never bytes: feedparser opens bytes that happen to name a local file.
    parsed = feedparser.parse(io.BytesIO(body))
    if parsed.get("bozo") and not parsed.entries:
        raise SourceError(
            f"{label}: not a readable RSS or Atom feed: {parsed.get('bozo_exception')}"
        )
    for number, entry in enumerate(parsed.entries, start=1):
        where = f"{label} (entry {number})"
        entry_id = entry.get("id") or entry.get("link")
        if not entry_id:
            yield Problem(where, None, None, "entry has neither an id nor a link")
            continue
        given, changed = _when(entry, "published"), _when(entry, "updated")
        published = given if given is not None else changed
        updated = changed if given is not None else None
        content = entry.get("content") or []
        # Without a detail, `summary` is feedparser's copy of the content: no summary.
        summary = entry.get("summary") if entry.get("summary_detail") else None
        if content:
            body_html = content[0].get("value")
        else:  # an RSS <description> is often the whole article: take it as the body
            body_html, summary = _as_html(entry, "summary"), None
        fields = {
            "title": _text(entry, "title"),
            "url": _link(entry),
            "published": published,
            "updated": updated if updated != published else None,
            "summary": _text(entry, "summary") if summary else None,
            "body_html": body_html,
            "author": entry.get("author"),
            "attachments": [
                {
                    "url": e.get("href"),
                    "type": e.get("type") or "application/octet-stream",
                    "length": e.get("length") or 0,
                }
                for e in entry.get("enclosures", [])
                if e.get("href")
            ],
        }
        yield RawItem(where, None, fields, default_id=_slug_for(str(entry_id)), date_required=False)

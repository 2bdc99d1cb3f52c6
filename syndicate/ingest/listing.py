"""An HTML listing page (like a press office's "Press Releases" page), read with CSS selectors."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from urllib.parse import unquote, urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, Tag

from syndicate.config import HtmlSource
from syndicate.errors import SourceError
from syndicate.ingest.items import Problem, RawItem
from syndicate.text import one_line, slug_or_digest

_WORD = r"[^\W\d_][\w'’.]*"
# "Ankara – …", "ISTANBUL – …", "Vienna — …", "Ankara - …": 1 to 4 capitalised words and a dash.
_DASHED = re.compile(
    rf"^(?P<place>{_WORD}(?:[ -]{_WORD}){{0,3}})\s*[–—]\s*"
    rf"|^(?P<hyphen>{_WORD}(?: {_WORD}){{0,3}})\s+-\s+"
)
_BYLINE = re.compile(r"^by\s+", re.I)


def split_dateline(summary: str, known: Sequence[str] = ()) -> tuple[str | None, str]:
    """('Ankara', rest) from 'Ankara – rest'; an undashed dateline only if it is in `known`."""
    match = _DASHED.match(summary)
    if match:
        place = match.group("place") or match.group("hyphen")
        if all(word[0].isupper() for word in re.split(r"[ -]", place)):
            return (place.title() if place.isupper() else place), summary[match.end() :].strip()
    for place in sorted(known, key=len, reverse=True):
        if summary.startswith(place) and summary[len(place) : len(place) + 1].isspace():
            return place, summary[len(place) :].strip()
    return None, summary


def _select(item: Tag, spec: str | None) -> str | None:
    """`css` gives the element's text, `css@attr` its attribute; '@attr' is the item itself."""
    if not spec:
        return None
    css, _, attr = spec.partition("@")
    element = item.select_one(css) if css.strip() else item
    if element is None:
        return None
    if attr:
        value = element.get(attr)
        return value if isinstance(value, str) else None
    return one_line(element.get_text(" "))


def _release_id(link: str | None, title: str | None) -> str | None:
    """The link's last path segment, with its query ('release.php?id=7' → 'release-php-id-7'),
    else a slug of the title."""
    if link:
        parts = urlsplit(link)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if segments:
            return slug_or_digest(f"{segments[-1]} {parts.query}".strip())
    return slug_or_digest(title) if title else None


def _check_selectors(source: HtmlSource, label: str) -> None:
    """Every selector compiles, before any item is read (SelectorSyntaxError is no ValueError)."""
    specs = (source.item, source.title, source.link, source.summary, source.date, source.author)
    for spec in specs:
        css = (spec or "").partition("@")[0]
        if not css.strip():
            continue
        try:
            soupsieve.compile(css)
        except soupsieve.SelectorSyntaxError as exc:
            reason = str(exc).splitlines()[0]
            raise SourceError(f"{label}: invalid CSS selector {css!r}: {reason}") from None


def read_listing(
    html: str, source: HtmlSource, label: str, page_url: str | None = None
) -> Iterator[RawItem | Problem]:
    _check_selectors(source, label)
    soup = BeautifulSoup(html, "html.parser")
    items = soup.select(source.item)
    base_tag = soup.find("base", href=True)
    base = (
        source.base_url or (base_tag.get("href") if isinstance(base_tag, Tag) else None) or page_url
    )
    for item in items:
        title = _select(item, source.title)
        link = _select(item, source.link)
        if link and base:
            link = urljoin(str(base), link)
        dateline, summary = split_dateline(_select(item, source.summary) or "", source.datelines)
        author = _select(item, source.author)
        fields = {
            "title": title,
            "url": link,
            "summary": summary,
            "dateline": dateline,
            "published": _select(item, source.date),
            "author": _BYLINE.sub("", author) if author else None,
            "kind": source.byline_kind if author else source.kind,
        }
        yield RawItem(
            label, item.sourceline, fields, default_id=_release_id(link, title), date_required=False
        )

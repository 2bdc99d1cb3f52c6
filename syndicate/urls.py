"""Where every public file lives under `site.output_dir`, and its absolute URL.

Paths are relative, '/'-separated; a path ending in '/' is a page served from its index.html.
"""

from __future__ import annotations

from urllib.parse import urlsplit

ALL = "all"
FORMATS = ("rss", "atom", "json")
MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
INDEX = ""
OPML = "feeds.opml"
SITEMAP = "sitemap.xml"  # a sitemap index: the sitemaps below
SITEMAP_PAGES = "sitemaps/pages.xml"  # the index page and the topic pages
STYLESHEET = "style.css"
NOT_FOUND = "404.html"


def _lang(lang: str | None) -> str:
    return f"{lang}/" if lang else ""


def feed(topic: str, fmt: str, lang: str | None = None) -> str:
    """The current (subscription) document of a topic: feeds/trafficking.atom."""
    return f"feeds/{_lang(lang)}{topic}.{fmt}"


def archive(topic: str, number: int, fmt: str, lang: str | None = None) -> str:
    """An RFC 5005 archive document; number 1 holds the oldest entries."""
    return f"feeds/{_lang(lang)}archive/{topic}/{number}.{fmt}"


def topic_page(topic: str) -> str:
    return f"topics/{topic}/"


def topic_archive(topic: str, number: int) -> str:
    """A page of a topic's older releases: the releases of feed archive `number`."""
    return f"topics/{topic}/archive/{number}/"


def sitemap_releases(number: int) -> str:
    """A sitemap of release pages; number 1 lists the oldest."""
    return f"sitemaps/releases-{number}.xml"


def release_page(release_id: str) -> str:
    return f"releases/{release_id}/"


def file_for(path: str) -> str:
    """The file that serves `path`: pages are folders with an index.html."""
    return f"{path}index.html" if path == INDEX or path.endswith("/") else path


def absolute(base_url: str, path: str) -> str:
    return f"{base_url.rstrip('/')}/{path}"


def relative(from_path: str, to_path: str) -> str:
    """A link from the page at `from_path` to `to_path` that works under any base URL."""
    return "../" * from_path.count("/") + to_path or "./"


def domain(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"

"""Turn configured sources, or paths given on the command line, into readers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from syndicate.config import (
    Config,
    CsvSource,
    FeedSource,
    HtmlSource,
    JsonSource,
    MarkdownSource,
    Source,
)
from syndicate.errors import SourceError
from syndicate.files import display, read_utf8
from syndicate.ingest import exports, feed, listing, markdown
from syndicate.ingest.items import Problem, RawItem
from syndicate.store import Store
from syndicate.store import sources as store_sources

Items = Iterator[RawItem | Problem]


@dataclass
class Reader:
    """One source, ready to read. `folder` is set for Markdown folders (retraction pass)."""

    label: str
    origin: str
    read: Callable[[], Items]
    folder: Path | None = None
    on_success: list[Callable[[datetime], None]] = field(default_factory=list)


def _origin(kind: str, target: Path | str, config: Config) -> str:
    """A stable key for a source: its path relative to the config file, or its URL."""
    if isinstance(target, str):
        return f"{kind}:{target}"
    relative = os.path.relpath(target.resolve(), config.base_dir.resolve())
    return f"{kind}:{Path(relative).as_posix()}"


def _is_url(value: str) -> bool:
    return urlsplit(value).scheme in ("http", "https")


def for_source(source: Source, config: Config, store: Store | None) -> Reader:
    if isinstance(source, MarkdownSource):
        label = display(source.path)
        return Reader(
            label,
            _origin("markdown", source.path, config),
            lambda: markdown.read_folder(source.path, label),
            folder=source.path,
        )
    if isinstance(source, JsonSource | CsvSource):
        label = display(source.path)
        read = exports.read_json if isinstance(source, JsonSource) else exports.read_csv
        return Reader(
            label, _origin(source.type, source.path, config), lambda: read(source.path, label)
        )
    if isinstance(source, HtmlSource):
        label = display(source.path)
        return Reader(
            label,
            _origin("html", source.path, config),
            lambda: listing.read_listing(read_utf8(source.path, label, SourceError), source, label),
        )
    return _feed_reader(source, config, store)


def _feed_reader(source: FeedSource, config: Config, store: Store | None) -> Reader:
    if not _is_url(source.url):
        path = Path(source.url)
        label = display(path)

        def read_file() -> Items:
            try:
                body = path.read_bytes()
            except OSError as exc:
                raise SourceError(f"{label}: cannot read: {exc.strerror}") from None
            return feed.parse_feed(body, label)

        return Reader(label, _origin("feed", path, config), read_file)
    origin = _origin("feed", source.url, config)
    reader = Reader(source.url, origin, lambda: iter(()))

    def read_url() -> Items:
        if store is None:  # `syndicate check` reads local files only
            return iter(())
        with store.connect() as conn:
            etag, modified = store_sources.validators(conn, origin)
        fetched = feed.fetch(source.url, etag, modified)
        reader.on_success.append(lambda now: _remember(store, origin, fetched, now))
        return feed.parse_feed(fetched.body, source.url) if fetched.body is not None else iter(())

    reader.read = read_url
    return reader


def _remember(store: Store, origin: str, fetched: feed.Fetched, now: datetime) -> None:
    with store.begin() as conn:
        store_sources.remember(conn, origin, fetched.etag, fetched.last_modified, now)


def for_path(value: str, config: Config, store: Store | None) -> Reader:
    """A path or URL from the command line; its kind comes from its suffix."""
    if _is_url(value):
        return _feed_reader(FeedSource(type="feed", url=value), config, store)
    path = Path(value)
    for source in config.sources:
        if isinstance(source, HtmlSource) and path.resolve() == source.path.resolve():
            return for_source(source, config, store)  # keep its selectors
    if path.is_dir():
        return for_source(MarkdownSource(type="markdown", path=path), config, store)
    suffix = path.suffix.lower()
    if suffix == ".md":
        folder = _markdown_folder(path, config)
        label = display(path)
        ref = path.resolve().relative_to(folder.resolve()).as_posix()
        return Reader(
            label,
            _origin("markdown", folder, config),
            lambda: iter([markdown.read_file(path, label, ref)]),
        )
    kinds: dict[str, Callable[[], Source]] = {
        ".json": lambda: JsonSource(type="json", path=path),
        ".jsonl": lambda: JsonSource(type="json", path=path),
        ".ndjson": lambda: JsonSource(type="json", path=path),
        ".csv": lambda: CsvSource(type="csv", path=path),
        ".html": lambda: HtmlSource(type="html", path=path),
        ".htm": lambda: HtmlSource(type="html", path=path),
    }
    if suffix in kinds:
        return for_source(kinds[suffix](), config, store)
    if suffix in (".xml", ".rss", ".atom", ".rdf"):
        return _feed_reader(FeedSource(type="feed", url=str(path)), config, store)
    raise SourceError(
        f"{value}: cannot tell the kind of source from the name; use a folder or a "
        ".md, .json, .jsonl, .csv, .html, .xml/.rss/.atom file, or an http(s) feed URL"
    )


def _markdown_folder(path: Path, config: Config) -> Path:
    """The configured Markdown folder holding `path`, so the release keeps its origin."""
    for source in config.sources:
        if isinstance(source, MarkdownSource) and path.resolve().is_relative_to(
            source.path.resolve()
        ):
            return source.path
    return path.parent


def readers(config: Config, store: Store | None, paths: Sequence[str] = ()) -> list[Reader]:
    if paths:
        return [for_path(p, config, store) for p in paths]
    return [for_source(s, config, store) for s in config.sources]

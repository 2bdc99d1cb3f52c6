"""What a build works from (a snapshot of the public releases) and what it produces
(documents: a path, a fingerprint of their inputs, and a way to render their bytes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from syndicate.config import Config
from syndicate.model import Release
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.urls import ALL


@dataclass(frozen=True, slots=True)
class Document:
    """One output file. `fingerprint` changes whenever the rendered bytes could; a build skips
    rendering a document whose fingerprint and file are unchanged."""

    path: str
    fingerprint: str
    render: Callable[[], bytes]


@dataclass(frozen=True)
class Snapshot:
    """Every public release at `now`, newest first, with per-topic and per-language views."""

    config: Config
    now: datetime
    releases: Sequence[Release]
    hashes: dict[str, str] = field(default_factory=dict)

    def topic(self, slug: str) -> list[Release]:
        if slug == ALL:
            return list(self.releases)
        return [r for r in self.releases if slug in r.categories]

    @cached_property
    def languages(self) -> list[str]:
        """The languages to give feeds of their own: none unless there is more than one."""
        found = sorted({r.lang for r in self.releases})
        return found if len(found) > 1 else []

    def content_hash(self, release: Release) -> str:
        """Cached: documents fingerprint the same release many times."""
        known = self.hashes.get(release.id)
        if known is None:
            known = self.hashes[release.id] = release.content_hash()
        return known

    @property
    def topics(self) -> list[str]:
        """'all' first, then the configured topics in config order."""
        return [ALL, *self.config.topics]


ALL_TITLE = "All releases"
ALL_DESCRIPTION = "Every release, whatever its topic."


def topic_heading(config: Config, slug: str) -> tuple[str, str]:
    """(title, description) of a topic, 'all' included: one wording for feeds and pages."""
    topic = config.topics.get(slug)
    if topic is None:
        return ALL_TITLE, ALL_DESCRIPTION
    return topic.title, topic.description


def snapshot(config: Config, store: Store, now: datetime) -> Snapshot:
    with store.connect() as conn:
        releases = store_releases.latest(conn, now, order=list(config.topics))
        hashes = store_releases.public_hashes(conn, now)
    return Snapshot(config, now, releases, hashes)

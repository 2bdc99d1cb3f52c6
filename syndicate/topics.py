"""Which topics a release belongs to: its explicit slugs plus every topic whose rules match."""

from __future__ import annotations

import re
from collections.abc import Mapping

from syndicate.config import Topic
from syndicate.model import Release
from syndicate.text import fold, html_to_text


def _keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    """Whole words, case- and accent-insensitive; any run of spaces matches any other."""
    words = sorted({fold(k).strip() for k in keywords if k.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


class Classifier:
    """Built once per config; `classify` is pure and cheap to call per release."""

    def __init__(self, topics: Mapping[str, Topic]) -> None:
        self.order = list(topics)
        self._rules = [
            (slug, _keyword_pattern(t.keywords), {fold(d) for d in t.datelines}, set(t.kinds))
            for slug, t in topics.items()
        ]

    def classify(self, release: Release) -> tuple[str, ...]:
        """Effective topics in config order; unknown explicit slugs are left out."""
        explicit = set(release.topics)
        text = fold(" ".join((release.title, release.summary, html_to_text(release.body_html))))
        dateline = fold(release.dateline or "")
        return tuple(
            slug
            for slug, keywords, datelines, kinds in self._rules
            if slug in explicit
            or (keywords is not None and keywords.search(text))
            or (dateline and dateline in datelines)
            or release.kind in kinds
        )

    def unknown(self, release: Release) -> list[str]:
        known = set(self.order)
        return [slug for slug in release.topics if slug not in known]

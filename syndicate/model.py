"""Domain types: plain, frozen, UTC-aware; no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    PRESS_RELEASE = "press-release"
    OP_ED = "op-ed"
    STATEMENT = "statement"
    NEWS = "news"


@dataclass(frozen=True, slots=True)
class Attachment:
    url: str
    media_type: str
    length: int
    title: str = ""


@dataclass(frozen=True, slots=True)
class Release:
    """One release as stored. `topics` are the author's explicit slugs; `categories` are
    the effective topics (explicit plus every matching topic rule)."""

    id: str
    title: str
    published: datetime
    url: str
    lang: str
    kind: Kind = Kind.PRESS_RELEASE
    updated: datetime | None = None
    embargo: datetime | None = None
    dateline: str | None = None
    author: str | None = None
    summary: str = ""
    body_html: str = ""
    topics: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = field(default=())
    retracted: bool = False

    @property
    def public_from(self) -> datetime:
        """The instant the release may first be shown: publication or embargo lift."""
        if self.embargo is not None and self.embargo > self.published:
            return self.embargo
        return self.published

    def is_public(self, now: datetime) -> bool:
        return not self.retracted and self.public_from <= now

    def content_hash(self) -> str:
        """Hash of what a reader sees; `updated`, `categories` and `retracted` are not content."""
        content = self.to_dict()
        for key in ("updated", "categories", "retracted"):
            del content[key]
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (datetimes as RFC 3339)."""
        data = asdict(self)
        for key in ("published", "updated", "embargo"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        data["kind"] = str(self.kind)
        data["topics"] = list(self.topics)
        data["categories"] = list(self.categories)
        data["attachments"] = [asdict(a) for a in self.attachments]
        return data


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A recipient of a list. Empty `topics` means every topic of the list."""

    address: str
    name: str = ""
    topics: tuple[str, ...] = ()

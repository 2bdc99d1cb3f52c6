"""Decide what an incoming release changes (pure), then apply the decisions in one transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from syndicate.model import Release
from syndicate.store import Store
from syndicate.store import releases as store_releases
from syndicate.store.releases import Stored, Write


class Outcome(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    RETRACTED = "retracted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A built release and where it came from."""

    release: Release
    origin: str
    ref: str | None
    published_defaulted: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    write: Write | None = None
    reason: str = ""


def decide(candidate: Candidate, existing: Stored | None, now: datetime) -> Decision:
    """New, updated (content hash changed), unchanged, retracted, or rejected (id taken)."""
    incoming = candidate.release
    if existing is None:
        return Decision(Outcome.NEW, Write(incoming, candidate.origin, candidate.ref, new=True))
    old = existing.release
    if existing.origin != candidate.origin and not old.retracted:
        return Decision(
            Outcome.REJECTED,
            reason=(
                f"id already used by a release from {existing.origin}; give one of them another id"
            ),
        )
    if candidate.published_defaulted:
        incoming = dataclasses.replace(incoming, published=old.published)
    changed = incoming.content_hash() != existing.content_hash or (
        incoming.updated is not None and incoming.updated != old.updated
    )
    if incoming.retracted and not old.retracted:
        outcome = Outcome.RETRACTED
    elif changed or old.retracted != incoming.retracted:
        outcome = Outcome.UPDATED
    else:
        outcome = Outcome.UNCHANGED
    if outcome is not Outcome.UNCHANGED and changed and candidate.release.updated is None:
        incoming = dataclasses.replace(incoming, updated=now)
    elif not changed:
        incoming = dataclasses.replace(incoming, updated=old.updated)
    bookkeeping = (
        set(old.categories) != set(incoming.categories)
        or existing.origin_ref != candidate.ref
        or existing.origin != candidate.origin
    )
    if outcome is Outcome.UNCHANGED and not bookkeeping:
        return Decision(outcome)
    return Decision(outcome, Write(incoming, candidate.origin, candidate.ref, new=False))


def apply(store: Store, batch: Sequence[Candidate], now: datetime) -> list[Decision]:
    """Decide every candidate against the stored rows and write them in one transaction.
    Two writers racing for the same ids take turns: the second decides on what the first
    wrote, instead of failing on a key it inserted meanwhile."""
    with store.begin() as conn:
        store_releases.lock_for_upsert(conn)
        existing = store_releases.get_many(conn, [c.release.id for c in batch])
        decisions = [decide(c, existing.get(c.release.id), now) for c in batch]
        writes = [d.write for d in decisions if d.write is not None]
        store_releases.write(conn, writes, now)
    return decisions

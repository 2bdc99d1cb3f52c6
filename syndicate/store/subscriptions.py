"""Self-service subscriptions, subscribers' own topic choices, the confirmation rate limit,
and the record of every lifted suppression. Addresses are stored by their suppression key."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syndicate.store.digests import insert_ignoring_conflict
from syndicate.store.schema import (
    confirmation_sends,
    resubscriptions,
    subscriptions,
    suppressions,
    topic_choices,
)
from syndicate.store.suppressions import EVERY_LIST, Suppression, key


class State(StrEnum):
    PENDING = "pending"  # asked on the subscribe form, not yet confirmed
    ACTIVE = "active"  # confirmed from the emailed link


@dataclass(frozen=True, slots=True)
class Subscription:
    list_slug: str
    email: str
    topics: tuple[str, ...]
    state: State
    requested_at: datetime
    confirmed_at: datetime | None


def _subscription(row: sa.Row[tuple[object, ...]]) -> Subscription:
    return Subscription(
        row.list_slug,
        row.email,
        tuple(row.topics),
        State(row.state),
        row.requested_at,
        row.confirmed_at,
    )


def get(conn: Connection, list_slug: str, address: str) -> Subscription | None:
    row = conn.execute(
        sa.select(subscriptions).where(
            subscriptions.c.list_slug == list_slug, subscriptions.c.address == key(address)
        )
    ).first()
    return _subscription(row) if row else None


def of_list(conn: Connection, list_slug: str) -> Iterator[Subscription]:
    """Every self-service subscription of a list, pending ones too, in address order."""
    query = (
        sa.select(subscriptions)
        .where(subscriptions.c.list_slug == list_slug)
        .order_by(subscriptions.c.address)
    )
    for row in conn.execute(query):
        yield _subscription(row)


def request(
    conn: Connection, list_slug: str, email: str, topics: Iterable[str], now: datetime
) -> None:
    """Record a request from the subscribe form: a new pending subscription, or the newest
    choice of topics for one not yet confirmed. An active one stays as it is."""
    row = {
        "list_slug": list_slug,
        "address": key(email),
        "email": email,
        "topics": list(topics),
        "state": State.PENDING.value,
        "requested_at": now,
        "confirmed_at": None,
    }
    if not insert_ignoring_conflict(conn, subscriptions, row):
        conn.execute(
            sa.update(subscriptions)
            .where(
                subscriptions.c.list_slug == list_slug,
                subscriptions.c.address == key(email),
                subscriptions.c.state == State.PENDING.value,
            )
            .values(email=email, topics=row["topics"], requested_at=now)
        )


def activate(conn: Connection, list_slug: str, address: str, now: datetime) -> bool:
    """Pending → active; True when this call made the change."""
    result = conn.execute(
        sa.update(subscriptions)
        .where(
            subscriptions.c.list_slug == list_slug,
            subscriptions.c.address == key(address),
            subscriptions.c.state == State.PENDING.value,
        )
        .values(state=State.ACTIVE.value, confirmed_at=now)
    )
    return bool(result.rowcount)


def claim_confirmation(conn: Connection, address: str, now: datetime, every: timedelta) -> bool:
    """May a confirmation go to `address` now (none sent to it within `every`, whatever the
    list)? True claims the slot: two requests at once cannot both send."""
    row = {"address": key(address), "sent_at": now}
    if insert_ignoring_conflict(conn, confirmation_sends, row):
        return True
    result = conn.execute(
        sa.update(confirmation_sends)
        .where(
            confirmation_sends.c.address == key(address),
            confirmation_sends.c.sent_at <= now - every,
        )
        .values(sent_at=now)
    )
    return bool(result.rowcount)


def release_confirmation(conn: Connection, address: str, claimed: datetime) -> None:
    """Give back a claimed slot whose mail could not be sent, so the reader may try again."""
    conn.execute(
        sa.delete(confirmation_sends).where(
            confirmation_sends.c.address == key(address), confirmation_sends.c.sent_at == claimed
        )
    )


def topic_choice(conn: Connection, list_slug: str, address: str) -> tuple[str, ...] | None:
    value = conn.execute(
        sa.select(topic_choices.c.topics).where(
            topic_choices.c.list_slug == list_slug, topic_choices.c.address == key(address)
        )
    ).scalar_one_or_none()
    return None if value is None else tuple(value)


def topic_choices_of(conn: Connection, list_slug: str) -> dict[str, tuple[str, ...]]:
    """Every subscriber's own choice on a list, by address key."""
    query = sa.select(topic_choices.c.address, topic_choices.c.topics).where(
        topic_choices.c.list_slug == list_slug
    )
    return {row.address: tuple(row.topics) for row in conn.execute(query)}


def choose_topics(
    conn: Connection, list_slug: str, address: str, topics: Iterable[str], now: datetime
) -> None:
    """The subscriber's own choice; it wins over the list file's and the subscribe form's."""
    chosen = list(topics)
    row = {"list_slug": list_slug, "address": key(address), "topics": chosen, "updated_at": now}
    if not insert_ignoring_conflict(conn, topic_choices, row):
        conn.execute(
            sa.update(topic_choices)
            .where(topic_choices.c.list_slug == list_slug, topic_choices.c.address == key(address))
            .values(topics=chosen, updated_at=now)
        )


@dataclass(frozen=True, slots=True)
class Resubscription:
    address: str
    list_slug: str
    by: str
    at: datetime
    lifted: Suppression


def lift(
    conn: Connection,
    address: str,
    list_slug: str,
    other_lists: Iterable[str],
    *,
    before: datetime,
    by: str,
    now: datetime,
) -> list[Resubscription]:
    """Bring `address` back to `list_slug`: delete its suppressions made before `before` (a
    newer one is a later wish and stays), and record each lift with who and when. A
    suppression from every list is narrowed to `other_lists` rather than dropped: they still
    get nothing from those."""
    lifted: list[Resubscription] = []
    query = sa.select(suppressions).where(
        suppressions.c.address == key(address),
        suppressions.c.list_slug.in_([list_slug, EVERY_LIST]),
        suppressions.c.created_at < before,
    )
    for row in conn.execute(query).all():
        old = Suppression(row.address, row.list_slug, row.reason, row.source, row.created_at)
        if old.list_slug == EVERY_LIST:
            for other in other_lists:
                if other != list_slug:
                    insert_ignoring_conflict(
                        conn,
                        suppressions,
                        {
                            "address": old.address,
                            "list_slug": other,
                            "reason": old.reason,
                            "source": old.source,
                            "created_at": old.created_at,
                        },
                    )
        conn.execute(
            sa.delete(suppressions).where(
                suppressions.c.address == old.address, suppressions.c.list_slug == old.list_slug
            )
        )
        record = Resubscription(old.address, list_slug, by, now, old)
        record_lift(conn, record)
        lifted.append(record)
    return lifted


def record_lift(conn: Connection, record: Resubscription) -> None:
    conn.execute(
        sa.insert(resubscriptions).values(
            address=record.address,
            list_slug=record.list_slug,
            by=record.by,
            at=record.at,
            scope=record.lifted.list_slug,
            reason=record.lifted.reason,
            source=record.lifted.source,
            suppressed_at=record.lifted.created_at,
        )
    )


def history(conn: Connection, address: str) -> list[Resubscription]:
    """Every lift recorded for `address`, oldest first."""
    query = (
        sa.select(resubscriptions)
        .where(resubscriptions.c.address == key(address))
        .order_by(resubscriptions.c.id)
    )
    return [
        Resubscription(
            row.address,
            row.list_slug,
            row.by,
            row.at,
            Suppression(row.address, row.scope, row.reason, row.source, row.suppressed_at),
        )
        for row in conn.execute(query)
    ]

"""Self-service subscriptions: the subscribe form's request, its confirmation (double
opt-in), and a subscriber's own choice of topics. The web pages call these; they hold the
rules.

The form never tells whether an address is subscribed: every valid request gets the same
answer, and what happens next happens in the mailbox. At most one email goes to an address
an hour, whatever the list, so the form cannot be used to flood someone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from syndicate.addresses import normalise_address
from syndicate.config import Config
from syndicate.confirmation import Notice
from syndicate.errors import SyndicateError
from syndicate.mailer import Mailer, Outgoing, Result
from syndicate.store import Store
from syndicate.store import subscriptions as store_subscriptions
from syndicate.store import suppressions as store_suppressions
from syndicate.store.subscriptions import State
from syndicate.subscriptions import allowed_topics, read_list_file
from syndicate.tokens import Claims

RESEND_AFTER = timedelta(hours=1)
CONFIRMED_BY = "self-service confirmation"


class FormError(SyndicateError, ValueError):
    """A mistake in the subscribe form, shown next to it; `field` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Request:
    list_slug: str
    email: str
    topics: tuple[str, ...]  # empty: every topic of the list


def read_form(config: Config, form: Mapping[str, Sequence[str]]) -> Request:
    """The request in a submitted form, or FormError saying what to fix."""
    lists = form.get("list") or []
    slug = lists[0] if len(lists) == 1 else ""
    if slug not in config.lists or not config.lists[slug].self_service:
        raise FormError("list", "Choose one of the lists.")
    raw = (form.get("email") or [""])[0]
    try:
        email = normalise_address(raw)
    except ValueError:
        raise FormError("email", "Enter an email address such as name@example.org.") from None
    if not email.isascii():
        raise FormError(
            "email", "Addresses with characters outside ASCII cannot receive our mail yet."
        )
    allowed = allowed_topics(config, config.lists[slug])
    topics = tuple(dict.fromkeys(form.get("topics") or []))
    unknown = [t for t in topics if t not in allowed]
    if unknown:
        titles = ", ".join(config.topics[t].title for t in allowed if t in config.topics)
        raise FormError("topics", f"This list covers only these topics: {titles}.")
    return Request(slug, email, topics)


def request(store: Store, config: Config, wanted: Request, now: datetime) -> Notice | None:
    """Record the request, and say which email to send, if any (None: one went to this
    address within the hour). An address that already receives the list gets a note with its
    preferences link instead of a confirmation; the caller answers the same either way."""
    slug, email = wanted.list_slug, wanted.email
    listed = email.casefold() in read_list_file(config, slug).lines
    with store.begin() as conn:
        own = store_subscriptions.get(conn, slug, email)
        suppressed = store_suppressions.of(conn, slug, [email])
        active = listed or (own is not None and own.state is State.ACTIVE)
        subscribed = active and not suppressed
        if not subscribed:
            store_subscriptions.request(conn, slug, email, wanted.topics, now)
        if not store_subscriptions.claim_confirmation(conn, email, now, RESEND_AFTER):
            return None
    return Notice(email, slug, wanted.topics, subscribed)


async def send(
    config: Config, store: Store, notice: Notice, data: bytes, now: datetime, mailer: Mailer
) -> bool:
    """Send the notice's message; on failure give the hour's slot back so the reader can
    ask again at once. True when the server accepted it."""
    results: list[Result] = []

    async def keep(result: Result) -> None:
        results.append(result)

    outgoing = Outgoing("confirmation", config.mail.sender.address, notice.address, data)
    try:
        summary = await mailer.send([outgoing], keep)
    except SyndicateError:
        summary = None
    if summary is not None and summary.sent:
        return True
    with store.begin() as conn:
        store_subscriptions.release_confirmation(conn, notice.address, now)
    return False


def confirm(config: Config, store: Store, claims: Claims, now: datetime) -> bool:
    """Activate the subscription the confirm link vouches for, lifting any suppression of
    the address for this list made before the link was issued (asking to subscribe again
    after unsubscribing is a newer wish; an unsubscribe after the request is newer still and
    stays). False when there is no such request (the list is gone, or it was never made)."""
    slug = claims.list_slug
    if slug not in config.lists:
        return False
    with store.begin() as conn:
        own = store_subscriptions.get(conn, slug, claims.address)
        if own is None:
            return False
        store_subscriptions.activate(conn, slug, claims.address, now)
        store_subscriptions.lift(
            conn,
            claims.address,
            slug,
            config.lists,
            before=claims.issued,
            by=CONFIRMED_BY,
            now=now,
        )
    return True


def current_topics(config: Config, store: Store, slug: str, address: str) -> tuple[str, ...]:
    """The topics `address` receives on list `slug` now (empty: every topic of the list)."""
    with store.connect() as conn:
        chosen = store_subscriptions.topic_choice(conn, slug, address)
        own = store_subscriptions.get(conn, slug, address)
    if chosen is not None:
        return chosen
    for person in read_list_file(config, slug).subscribers:
        if person.address.casefold() == address.casefold():
            return person.topics
    return own.topics if own is not None else ()


def choose_topics(
    config: Config, store: Store, slug: str, address: str, topics: Sequence[str], now: datetime
) -> tuple[str, ...]:
    """Keep a subscriber's own choice of topics (every topic of the list when they chose all
    of them); FormError for an empty or unknown choice."""
    allowed = allowed_topics(config, config.lists[slug])
    chosen = tuple(t for t in allowed if t in set(topics))
    if not chosen or len(chosen) != len(set(topics)):
        raise FormError("topics", "Choose at least one of the topics, or leave the list.")
    if set(chosen) == set(allowed):
        chosen = ()
    with store.begin() as conn:
        store_subscriptions.choose_topics(conn, slug, address, chosen, now)
    return chosen

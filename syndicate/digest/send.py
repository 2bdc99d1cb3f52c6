"""Deliver a digest: claim its pending deliveries, personalise each from the one rendered
variant of the recipient's topic selection, hand them to the mailer, and record every result
the moment the server answers.

Exactly once: one sender per digest at a time (a lock that dies with its holder). A delivery
is `sent` only after the server's 250; after a crash the only ambiguous rows are those still
`sending`, at most one per SMTP connection in flight (and any the server had accepted just
before the connection broke). The next sender of the digest sends those again: a recipient
may then get a second copy, never none.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from syndicate import bounces
from syndicate.config import Config, MailingList
from syndicate.digest import compile as compiler
from syndicate.digest.render import DigestContent, Variant, render_variant, signed_recipient
from syndicate.errors import SyndicateError
from syndicate.mailer import Mailer, OnResult, Outgoing, Result, Status
from syndicate.model import Release
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store import releases as store_releases
from syndicate.store import settings as store_settings
from syndicate.store import suppressions as store_suppressions
from syndicate.store.digests import Delivery, Digest, State
from syndicate.store.locks import held

SIGNING_SETTING = "mail.secret"  # the name of the stored value, not a secret
_STATES = {Status.SENT: State.SENT, Status.FAILED: State.FAILED, Status.DEFERRED: State.DEFERRED}


class BusyError(SyndicateError):
    """Another process is sending this digest right now."""


@dataclass
class Report:
    """Deliveries of one digest by state, after a send."""

    digest: Digest
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("pending", "sending", "deferred"))

    @property
    def settled(self) -> bool:
        """Every delivery sent: none failed, none still to send."""
        return self.waiting == 0 and self.counts.get("failed", 0) == 0

    def summary(self) -> str:
        c = self.counts
        return f"sent {c.get('sent', 0)}, failed {c.get('failed', 0)}, pending {self.waiting}"


def signing_secret(config: Config, store: Store) -> str:
    """`mail.secret` when set (production: SYNDICATE_MAIL__SECRET); otherwise a random one
    the service generated once and keeps in the store, so links stay valid across restarts."""
    if config.mail.secret is not None:
        return config.mail.secret.get_secret_value()
    with store.begin() as conn:
        return store_settings.get_or_create(
            conn, SIGNING_SETTING, lambda: secrets.token_urlsafe(32)
        )


class _Variants:
    """One rendered variant per distinct topic selection, rendered on first use."""

    def __init__(
        self, config: Config, mailing_list: MailingList, digest: Digest, plan: compiler.Plan
    ) -> None:
        self.config, self.mailing_list, self.digest, self.plan = config, mailing_list, digest, plan
        self.cache: dict[tuple[str, ...], Variant | None] = {}

    def for_topics(self, narrowed: tuple[str, ...]) -> Variant | None:
        topics = compiler.selection(self.config, self.mailing_list, narrowed)
        if topics not in self.cache:
            sections, corrections = compiler.for_recipient(
                self.config, self.mailing_list, self.plan, topics
            )
            empty = not sections and not corrections and not self.mailing_list.send_empty
            self.cache[topics] = (
                None
                if empty
                else render_variant(
                    DigestContent(
                        self.digest.list_slug,
                        self.mailing_list.title,
                        self.digest.period,
                        sections,
                        corrections,
                    ),
                    self.config,
                    subject_template=self.mailing_list.subject,
                    template=self.mailing_list.template,
                )
            )
        return self.cache[topics]


def _plan(config: Config, store: Store, digest: Digest, now: datetime) -> compiler.Plan:
    """The digest's releases as they are now; one retracted since creation is left out."""
    with store.connect() as conn:
        new_ids, corrected_ids = store_digests.members(conn, digest.id)
        found = {
            r.id: r
            for r in store_releases.by_ids(conn, [*new_ids, *corrected_ids], list(config.topics))
        }

    def keep(ids: list[str]) -> tuple[Release, ...]:
        return tuple(
            sorted(
                (found[i] for i in ids if i in found and not found[i].retracted),
                key=lambda r: (r.public_from, r.id),
            )
        )

    return compiler.Plan(keep(new_ids), keep(corrected_ids))


async def deliver(
    config: Config,
    store: Store,
    digest: Digest,
    *,
    clock: Callable[[], datetime],
    mailer: Mailer | None = None,
    progress: Callable[[], None] | None = None,
) -> Report:
    """Send every pending delivery of `digest`. Raises BusyError if another process is
    sending it, MailerError if the SMTP server cannot be used (the rest stays pending)."""
    mailing_list = config.lists[digest.list_slug]
    mailer = mailer or Mailer(config.smtp)
    with held(store, f"digest-{digest.id}") as mine:
        if not mine:
            raise BusyError(
                f"digest {digest.list_slug} {digest.key} is being sent by another "
                "process; try again when it has finished"
            )
        with store.begin() as conn:  # rows left `sending` by a sender that died
            store_digests.requeue(conn, [State.SENDING, State.DEFERRED], clock(), digest.id)
        variants = _Variants(config, mailing_list, digest, _plan(config, store, digest, clock()))
        secret = signing_secret(config, store)
        try:
            await mailer.send(
                _messages(config, store, digest, variants, secret, clock),
                _recorder(store, clock, progress, config.mail.bounce_limit),
            )
        finally:
            with store.begin() as conn:  # claimed, never attempted: still to send
                store_digests.requeue(conn, [State.SENDING], clock(), digest.id)
    return status(store, digest)


def status(store: Store, digest: Digest) -> Report:
    with store.connect() as conn:
        counts = dict(
            next(c for d, c in store_digests.status(conn, digest.list_slug) if d.id == digest.id)
        )
    return Report(digest, counts)


async def _messages(
    config: Config,
    store: Store,
    digest: Digest,
    variants: _Variants,
    secret: str,
    clock: Callable[[], datetime],
) -> AsyncIterator[Outgoing]:
    batch_size = max(10, 4 * config.smtp.connections)
    sender = config.mail.sender.address
    while True:
        with store.begin() as conn:
            batch = store_digests.claim(conn, digest.id, batch_size, clock())
            # Checked again now: an unsubscribe since the digest was made still counts.
            blocked = store_suppressions.among(conn, digest.list_slug, (d.address for d in batch))
        if not batch:
            return
        for delivery in batch:
            if store_suppressions.key(delivery.address) in blocked:
                with store.begin() as conn:
                    store_digests.record(
                        conn,
                        delivery.id,
                        State.SKIPPED,
                        "not sent: the address is suppressed",
                        0,
                        clock(),
                    )
                continue
            data = _personalised(config, digest, variants, secret, delivery)
            if isinstance(data, str):
                with store.begin() as conn:
                    store_digests.record(conn, delivery.id, State.FAILED, data, 0, clock())
                continue
            yield Outgoing(str(delivery.id), sender, delivery.address, data)


def _personalised(
    config: Config, digest: Digest, variants: _Variants, secret: str, delivery: Delivery
) -> bytes | str:
    """The message bytes, or why this delivery cannot be sent (recorded as failed)."""
    variant = variants.for_topics(delivery.topics)
    if variant is None:
        return "not sent: every release for this recipient was retracted"
    recipient = signed_recipient(
        config, secret, delivery.address, delivery.name, digest.list_slug, issued=digest.period
    )
    try:  # same id and date on a resend: the copy is the same bytes
        return variant.personalise(
            recipient, f"{digest.list_slug}.{digest.id}.{delivery.id}", digest.period
        )
    except ValueError as exc:
        return f"not sent: {exc}"


def _recorder(
    store: Store,
    clock: Callable[[], datetime],
    progress: Callable[[], None] | None,
    bounce_limit: int,
) -> OnResult:
    async def record(result: Result) -> None:
        with store.begin() as conn:
            store_digests.record(
                conn,
                int(result.key),
                _STATES[result.status],
                result.reply,
                result.attempts,
                clock(),
            )
            if result.status is Status.FAILED and result.stage == "RCPT":  # a hard bounce?
                bounces.record_refusal(conn, int(result.key), result.reply, bounce_limit, clock())
        if progress is not None:
            progress()

    return record

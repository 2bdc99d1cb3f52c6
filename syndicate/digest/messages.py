"""What a digest sends to each recipient: the digest's releases as they are now, rendered
once per distinct topic selection, personalised per recipient in the prepared bytes."""

from __future__ import annotations

import secrets

from syndicate.config import Config, MailingList
from syndicate.digest import compile as compiler
from syndicate.digest.render import (
    Copies,
    DigestContent,
    Variant,
    render_variant,
    signed_recipient,
)
from syndicate.errors import ConfigError
from syndicate.model import Release
from syndicate.store import Store
from syndicate.store import digests as store_digests
from syndicate.store import releases as store_releases
from syndicate.store import settings as store_settings
from syndicate.store.digests import Delivery, Digest

SIGNING_SETTING = "mail.secret"  # the name of the stored value, not a secret


def signing_secret(config: Config, store: Store) -> str:
    """`mail.secret` when set (production: SYNDICATE_MAIL__SECRET); otherwise a random one
    the service generated once and keeps in the store, so links stay valid across restarts."""
    if config.mail.secret is not None:
        return config.mail.secret.get_secret_value()
    with store.connect() as conn:  # read first: a write transaction takes SQLite's write lock
        stored = store_settings.get(conn, SIGNING_SETTING)
    if stored is not None:
        return stored
    with store.begin() as conn:
        return store_settings.get_or_create(
            conn, SIGNING_SETTING, lambda: secrets.token_urlsafe(32)
        )


def current_plan(config: Config, store: Store, digest: Digest) -> compiler.Plan:
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


class Messages:
    """One digest's messages: one rendered variant per distinct topic selection, rendered on
    first use, and each recipient's copy made from it."""

    def __init__(self, config: Config, store: Store, digest: Digest, secret: str) -> None:
        self.config, self.digest, self.secret = config, digest, secret
        self.mailing_list: MailingList = config.lists[digest.list_slug]
        self.plan = current_plan(config, store, digest)
        self.cache: dict[tuple[str, ...], Variant | None] = {}  # by topic selection
        # By a recipient's own topics: their copies, or why they get none.
        self._copies: dict[tuple[str, ...], Copies | str] = {}
        self._id_prefix = f"{digest.list_slug}.{digest.id}."

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

    def _copies_for(self, topics: tuple[str, ...]) -> Copies | str:
        try:
            variant = self.for_topics(topics)
        except ConfigError as exc:  # a template broken since `syndicate check`: this digest's
            return f"not sent: {exc}"  # recipients fail with the reason, other lists go on
        if variant is None:
            return "not sent: every release for this recipient was retracted"
        return Copies(variant, self.digest.period)

    def personalised(self, delivery: Delivery) -> tuple[bytes, bytes] | str:
        """The message bytes and the same in DATA form (see render.Copies), or why this
        delivery cannot be sent (recorded as failed)."""
        copies = self._copies.get(delivery.topics)
        if copies is None:
            copies = self._copies[delivery.topics] = self._copies_for(delivery.topics)
        if isinstance(copies, str):
            return copies
        digest = self.digest
        recipient = signed_recipient(
            self.config,
            self.secret,
            delivery.address,
            delivery.name,
            digest.list_slug,
            issued=digest.period,
        )
        try:  # same id and date on a resend: the copy is the same bytes
            return copies.both(recipient, f"{self._id_prefix}{delivery.id}")
        except ValueError as exc:
            return f"not sent: {exc}"

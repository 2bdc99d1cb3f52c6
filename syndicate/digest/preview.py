"""A digest as a recipient would see it now, written to files for a look before sending.
Nothing is recorded; the links carry tokens no server accepts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlalchemy.engine import Connection

from syndicate.config import Config
from syndicate.digest import compile as compiler
from syndicate.digest.render import DigestContent, render_variant, signed_recipient
from syndicate.errors import SyndicateError
from syndicate.model import Subscriber
from syndicate.subscriptions import recipients

PREVIEW_SECRET = "preview: these links are not valid"  # noqa: S105 - deliberately useless


@dataclass(frozen=True, slots=True)
class PreviewMessage:
    eml: bytes
    html: bytes


def message(
    config: Config, slug: str, plan: compiler.Plan, now: datetime, person: Subscriber | None = None
) -> PreviewMessage:
    """The copy `person` (found by `subscriber`) would get; the list's full copy when no one
    is given."""
    mailing_list = config.lists[slug]
    person = person or Subscriber("preview@example.org")
    topics = compiler.selection(config, mailing_list, person.topics)
    sections, corrections = compiler.for_recipient(config, mailing_list, plan, topics)
    variant = render_variant(
        DigestContent(slug, mailing_list.title, now, sections, corrections),
        config,
        subject_template=mailing_list.subject,
        template=mailing_list.template,
    )
    recipient = signed_recipient(
        config, PREVIEW_SECRET, person.address, person.name, slug, issued=now
    )
    eml = variant.personalise(recipient, f"preview.{slug}", now)
    parsed = message_from_bytes(eml, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    html = part.get_content().encode() if part is not None else b""
    return PreviewMessage(eml, html)


def subscriber(conn: Connection, config: Config, slug: str, address: str) -> Subscriber:
    """The list's subscriber with this address, with the topics their digest would have."""
    wanted = address.strip().casefold()
    for person in recipients(conn, config, slug):
        if person.address.casefold() == wanted:
            return person
    raise SyndicateError(f"{address} is not a subscriber of list {slug}")

"""The one email a subscribe request sends: a link to confirm (double opt-in), or, for an
address already subscribed, its preferences link. The web form answers the same either way,
so only the mailbox's owner learns which.

One message at a time, so it is built with the email package (which refuses a line break in
a header value) rather than the digest's byte-level renderer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from syndicate import tokens
from syndicate.config import Config
from syndicate.text import one_line

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
CONFIRM_PATH = "confirm/"
MANAGE_PATH = "preferences/"  # as in the digests' links
CONFIRM_FOR = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Notice:
    """What to send: `subscribed` False asks to confirm; True tells an address that already
    receives the list where its preferences are."""

    address: str
    list_slug: str
    topics: tuple[str, ...]
    subscribed: bool


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html.j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def link(config: Config, secret: str, notice: Notice, now: datetime) -> str:
    """The confirm link (expires after CONFIRM_FOR), or the preferences link (never)."""
    if notice.subscribed:
        token = tokens.sign(
            secret, "manage", notice.address, notice.list_slug, issued=now, expires=None
        )
        return f"{config.site.base_url}/{MANAGE_PATH}{token}"
    token = tokens.sign(
        secret,
        "confirm",
        notice.address,
        notice.list_slug,
        issued=now,
        expires=now + CONFIRM_FOR,
    )
    return f"{config.site.base_url}/{CONFIRM_PATH}{token}"


def subject(config: Config, notice: Notice) -> str:
    title = config.lists[notice.list_slug].title
    if notice.subscribed:
        return one_line(f"You already receive “{title}”")
    return one_line(f"Confirm your subscription to “{title}”")


def message(config: Config, secret: str, notice: Notice, now: datetime) -> bytes:
    """The complete message, CRLF line ends, ready for SMTP DATA."""
    mailing_list = config.lists[notice.list_slug]
    titles = {slug: topic.title for slug, topic in config.topics.items()}
    context = {
        "site": config.site,
        "list": mailing_list,
        "address": notice.address,
        "topics": [titles.get(t, t) for t in notice.topics],
        "subscribed": notice.subscribed,
        "link": link(config, secret, notice, now),
        "expires": f"{now + CONFIRM_FOR:%Y-%m-%d %H:%M} UTC",
        "subject": subject(config, notice),
    }
    env = _environment()
    sender = config.mail.sender
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(one_line(sender.name), addr_spec=sender.address)
    if config.mail.reply_to is not None:
        reply_to = config.mail.reply_to
        msg["Reply-To"] = Address(one_line(reply_to.name), addr_spec=reply_to.address)
    msg["To"] = Address(addr_spec=notice.address)
    msg["Subject"] = context["subject"]
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("confirm", domain=urlsplit(config.site.base_url).hostname)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(env.get_template("confirm.txt.j2").render(context), cte="quoted-printable")
    msg.add_alternative(
        env.get_template("confirm.html.j2").render(context), subtype="html", cte="quoted-printable"
    )
    return msg.as_bytes()

"""The confirmation email: both parts, the signed link, and headers no input can break."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from syndicate.config import Config
from syndicate.confirmation import Notice, message
from syndicate.tokens import verify
from tests.conftest import BASE_CONFIG, NOW, WriteConfig

SECRET = "s3cret"


@pytest.fixture
def config(write_config: WriteConfig) -> Config:
    return write_config(
        BASE_CONFIG
        + 'mail: {from: "Press \\"Desk\\" <press@example.org>"}\n'
        + "lists:\n"
        + '  weekly: {title: "Weekly\\r\\nBcc: evil@example.net", schedule: "0 8 * * mon"}\n'
    )


def parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_confirmation_carries_a_link_signed_for_the_address_and_list(config: Config) -> None:
    notice = Notice("reader@example.org", "weekly", ("turkiye",), subscribed=False)
    mail = parse(message(config, SECRET, notice, NOW))
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    body = text.get_content()
    assert "topics: Türkiye" in body
    link = next(word for word in body.split() if "/confirm/" in word)
    assert link.startswith("https://press.example.org/news/confirm/")
    claims = verify(link.rsplit("/", 1)[1], [SECRET], "confirm", NOW + timedelta(days=6))
    assert (claims.address, claims.list_slug) == ("reader@example.org", "weekly")
    assert claims.expires == NOW + timedelta(days=7)
    assert link in html.get_content()


def test_no_header_carries_a_line_break_from_a_title(config: Config) -> None:
    notice = Notice("reader@example.org", "weekly", (), subscribed=False)
    data = message(config, SECRET, notice, NOW)
    mail = parse(data)
    assert mail["Bcc"] is None
    assert mail["To"] == "reader@example.org"
    assert mail["Subject"] == "Confirm your subscription to “Weekly Bcc: evil@example.net”"
    assert mail["From"].addresses[0].addr_spec == "press@example.org"
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(line.startswith((b" ", b"\t")) or b":" in line for line in head.split(b"\r\n"))


def test_an_address_already_subscribed_gets_its_preferences_link(config: Config) -> None:
    notice = Notice("desk@example.org", "weekly", (), subscribed=True)
    mail = parse(message(config, SECRET, notice, NOW))
    text = mail.get_body(("plain",))
    assert text is not None
    link = next(word for word in text.get_content().split() if "/preferences/" in word)
    claims = verify(link.rsplit("/", 1)[1], [SECRET], "manage", NOW + timedelta(days=3650))
    assert claims.address == "desk@example.org"

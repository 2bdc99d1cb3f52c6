"""CR, LF, NUL and their Unicode cousins in names, subjects, list titles and addresses can never
add a header or an SMTP command: through the config (mail.from's name, a list's title, its
subject template), the list file's names, the subscribe form, and mailer.Outgoing itself,
each against a real SMTP server that must receive exactly the intended recipients and no
header beyond the intended ones."""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from syndicate import maillinks
from syndicate.config import Config, Smtp
from syndicate.digest.outbox import create
from syndicate.digest.send import deliver
from syndicate.ingest import ingest
from syndicate.mailer import Mailer, Outgoing, Result, Status
from syndicate.store import Store
from syndicate.web import create_app
from tests.conftest import BASE_CONFIG, WriteConfig, write_release
from tests.figures import report
from tests.hostile.safety import header_hazards, header_names, parse_message
from tests.smtpserver import SmtpServer
from tests.webserver import running

pytestmark = pytest.mark.hostile

MONDAY = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
SENDER = "press@example.org"
EVIL = "evil@example.net"
DIGEST_HEADERS = {
    "From", "Reply-To", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "Precedence", "Auto-Submitted", "MIME-Version", "Content-Type",
}  # fmt: skip
CONFIRM_HEADERS = {
    "From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
    "Content-Type",
}  # fmt: skip

# Every way a value has been made to end its line: CR, LF, both, NUL, NEL, the Unicode line
# and paragraph separators, vertical tab and form feed, and an encoded-word that decodes to CRLF.
BREAKS = ["\r\n", "\n", "\r", "\x00", "\x85", "\u2028", "\u2029", "\x0b", "\x0c"]
ENCODED_CRLF = "=?utf-8?q?=0D=0ABcc:_evil@example.net?="


def yaml_quoted(value: str) -> str:
    """A YAML double-quoted scalar with every control or separator escaped."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or char in "\x85\u2028\u2029\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def injections(label: str) -> list[str]:
    """`label` followed by each line break and a header or an SMTP command."""
    return [
        f"{label}{brk}Bcc: {EVIL}{brk}X-Injected: 1{brk}{brk}RCPT TO:<{EVIL}>" for brk in BREAKS
    ] + [f"{label} {ENCODED_CRLF}"]


def assert_clean(data: bytes, recipient: str, names: set[str]) -> None:
    """One message: every header line a field or a continuation, each field once and one
    of `names`, and a To of exactly `recipient`."""
    assert header_hazards(data) == []
    found = header_names(data)
    assert sorted(found) == sorted(set(found)), found
    assert set(found) <= names, set(found) - names
    parsed = parse_message(data)
    assert [a.addr_spec for a in parsed["To"].addresses] == [recipient]
    assert parsed.get_all("Bcc") is None and parsed.get_all("X-Injected") is None


# --- through the config and the list file, in a digest ------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def test_names_titles_and_subjects_from_config_and_list_file_add_no_header_or_recipient(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer
) -> None:
    names = injections("Reader")
    people = [(f"r{n}@example.com", name) for n, name in enumerate(names)]
    people.append(("quoted@example.com", f'"Evil" <{EVIL}>, {EVIL}'))
    entries = "".join(
        f"  - {{email: {address}, name: {yaml_quoted(name)}}}\n" for address, name in people
    )
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "w.yaml").write_text(f"subscribers:\n{entries}")
    title = injections("Weekly")[0] + "\u2028<b>body"
    subject = "{{ list.title }}\r\nX-Injected: 1{{ '\\r\\nBcc: " + EVIL + "' }}\x85\u2028DATA"
    sender = f'"Press\u2028Bcc: {EVIL}\x85X-Injected: 1" <{SENDER}>'
    config = write_config(
        BASE_CONFIG
        + textwrap.dedent(f"""\
        smtp: {{host: 127.0.0.1, port: {smtp.port}}}
        mail:
          secret: s
          from: {yaml_quoted(sender)}
          reply_to: {yaml_quoted(f'"Desk{chr(0x2029)}Cc: {EVIL}" <desk@example.org>')}
        lists:
          weekly:
            title: {yaml_quoted(title)}
            schedule: "0 8 * * mon"
            subject: {yaml_quoted(subject)}
            subscribers: lists/w.yaml
        """)
    )
    write_release(project / "content", "r.md", "title: Hotline opens\npublished: 2026-11-27")
    ingest(config, store, MONDAY)
    created = create(config, store, "weekly", MONDAY, MONDAY)
    assert created.digest is not None
    result = asyncio.run(deliver(config, store, created.digest, clock=lambda: MONDAY))
    assert result is not None
    received = smtp.received
    assert sorted(m.recipients for m in received) == sorted((a,) for a, _ in people)
    assert {m.sender for m in received} == {SENDER}
    assert smtp.commands()["RCPT"] == len(people)
    for message in received:
        assert_clean(message.data, message.recipients[0], DIGEST_HEADERS)
        subject_line = parse_message(message.data)["Subject"]
        assert "\n" not in subject_line and "\r" not in subject_line
    report(
        "hostile-mail",
        f"{store.engine.dialect.name}: {len(people)} list-file names with {len(BREAKS)} kinds "
        "of line break, plus a hostile from, reply-to, list title and subject: "
        f"{len(received)} digests, each to exactly its recipient, 0 injected headers, "
        "0 injected RCPT",
    )


# --- through the subscribe form ---------------------------------------------------------------


def test_the_subscribe_form_sends_one_clean_message_to_the_one_address_it_was_given(
    project: Path, write_config: WriteConfig, store: Store, smtp: SmtpServer, tmp_path: Path
) -> None:
    title = injections("Alerts")[0]
    config: list[Config] = [
        write_config(
            BASE_CONFIG
            + textwrap.dedent(f"""\
            smtp: {{host: 127.0.0.1, port: {smtp.port}}}
            mail: {{secret: s, from: {yaml_quoted(f'"Press{chr(0x85)}Bcc: {EVIL}" <{SENDER}>')}}}
            lists:
              alerts: {{title: {yaml_quoted(title)}, schedule: immediate}}
            """)
        )
    ]
    hostile = [
        *(f"victim@example.org{brk}Bcc: {EVIL}" for brk in BREAKS),
        f"victim@example.org>\r\nRCPT TO:<{EVIL}",
        f"victim@example.org, {EVIL}",
        f"<victim@example.org>{EVIL}",
        f'"victim@example.org\r\nBcc: {EVIL}"@example.org',
        f"victim@example.org\r\n.\r\nMAIL FROM:<{EVIL}>",
    ]
    (tmp_path / "site").mkdir()
    routes = maillinks.routes(lambda: config[0], store, lambda: MONDAY)
    codes = []
    with (
        running(create_app(tmp_path / "site", routes=routes)) as url,
        httpx.Client(base_url=url) as client,
    ):
        for email in [*hostile, "reader@example.org"]:
            form = client.get("/subscribe").text
            found = re.search(r'name="csrf" value="([^"]+)"', form)
            assert found is not None
            data = {"csrf": found.group(1), "list": "alerts", "email": email}
            codes.append(client.post("/subscribe", data=data).status_code)
    assert codes == [400] * len(hostile) + [200]
    [message] = smtp.received
    assert message.recipients == ("reader@example.org",)
    assert message.sender == SENDER
    assert smtp.commands()["RCPT"] == 1
    assert_clean(message.data, "reader@example.org", CONFIRM_HEADERS)
    report(
        "hostile-mail",
        f"{store.engine.dialect.name}: {len(hostile)} hostile addresses through the subscribe "
        "form: all refused, 0 sent; the one good address got 1 message, headers clean",
    )


# --- mailer.Outgoing, straight to the server ----------------------------------------------------

GOOD = "reader@example.org"
HOSTILE_ADDRESSES = [
    *(f"{GOOD}{brk}RCPT TO:<{EVIL}>" for brk in ["\r\n", "\n", "\r", "\x00"]),
    f"{GOOD}>\r\nRCPT TO:<{EVIL}",
    f"{GOOD}> NOTIFY=NEVER\r\nRCPT TO:<{EVIL}",
    f"<{GOOD}>",
    f"Reader <{GOOD}>",
    f"{GOOD}, {EVIL}",
    f"{GOOD} {EVIL}",
    f" {GOOD}",
    f"{GOOD}\u2028RCPT TO:<{EVIL}>",
    f"{GOOD}\x85",
    "",
]
# Message bodies that try to end DATA early and start a second transaction (SMTP smuggling).
SMUGGLED = f"MAIL FROM:<{EVIL}>\r\nRCPT TO:<{EVIL}>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
ENDINGS = ["\r\n.\r\n", "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r", "\r\n\x00.\r\n"]


def _send(server: SmtpServer, items: list[Outgoing]) -> dict[str, Result]:
    results: dict[str, Result] = {}

    async def record(result: Result) -> None:
        results[result.key] = result

    settings = Smtp(host=server.host, port=server.port, timeout=5.0, connections=1)
    asyncio.run(Mailer(settings).send(items, record))
    return results


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_outgoing_envelopes_and_bodies_cannot_smuggle_commands(pipelining: bool) -> None:
    data = f"From: <{SENDER}>\r\nTo: <{GOOD}>\r\nSubject: hi\r\n\r\nBody\r\n".encode()
    items = [
        *(Outgoing(f"to{n}", SENDER, bad, data) for n, bad in enumerate(HOSTILE_ADDRESSES)),
        *(Outgoing(f"from{n}", bad, GOOD, data) for n, bad in enumerate(HOSTILE_ADDRESSES[:-1])),
        *(
            Outgoing(f"body{n}", SENDER, GOOD, data + f"a{end}{SMUGGLED}tail\r\n".encode())
            for n, end in enumerate(ENDINGS)
        ),
    ]
    with SmtpServer(pipelining=pipelining) as server:
        results = _send(server, items)
        received = server.received
        commands = server.commands()
    refused = {k for k, r in results.items() if r.status is Status.FAILED and r.attempts == 0}
    envelopes = {i.key for i in items if not i.key.startswith("body")}
    assert refused == envelopes, {k: results[k].reply for k in envelopes - refused}
    assert all(results[f"body{n}"].status is Status.SENT for n in range(len(ENDINGS)))
    assert [m.recipients for m in received] == [(GOOD,)] * len(ENDINGS)
    assert {m.sender for m in received} == {SENDER}
    assert commands["MAIL"] == commands["RCPT"] == commands["DATA"] == len(ENDINGS)
    for message in received:
        assert b"smuggled" in message.data  # carried inside the one message, as text
    report(
        "hostile-mail",
        f"mailer.Outgoing ({'pipelined' if pipelining else 'one command at a time'}): "
        f"{len(envelopes)} hostile envelopes refused before the wire, {len(ENDINGS)} smuggling "
        f"bodies sent as {len(ENDINGS)} messages, {commands['RCPT']} RCPT, 0 injected",
    )

"""Hard bounces: which failures count, DSNs as Postfix writes them, and
`syndicate bounces process` run as an admin runs it (a subprocess, a real Maildir, SQLite)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from syndicate.bounces import Parsed, classify, message_files, parse, read_messages
from syndicate.errors import InputError
from tests.conftest import BASE_CONFIG, ROOT, WriteConfig, run_syndicate

MESSAGES = ROOT / "tests" / "bounces"


def message(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


# --- What counts: `classify` (pure). ---


@pytest.mark.parametrize(
    ("status", "reply", "recorded"),
    [
        ("5.1.1", "550 5.1.1 <a@b>: Recipient address rejected: User unknown", "5.1.1"),
        ("5.1.2", "", "5.1.2"),  # no such domain
        ("5.1.10", "556 5.1.10 Recipient address has null MX", "5.1.10"),
        ("5.2.1", "550 5.2.1 Mailbox disabled", "5.2.1"),
        ("5.2.2", "552 5.2.2 Mailbox full", "5.2.2"),
        ("5.0.0", "550 Requested action not taken: mailbox unavailable", "5.0.0"),
        ("5.0.0", "551 User not local", "5.0.0"),
        ("", "550 5.1.1 No such user", "5.1.1"),  # a live RCPT reply
        ("", "550 No such user here", "550"),  # a reply without an enhanced code
        ("", "553 mailbox name not allowed", "553"),
        ("5.0.0", "550 5.1.1 unknown", "5.1.1"),  # the reply is more precise
    ],
)
def test_a_bad_mailbox_is_a_hard_bounce(status: str, reply: str, recorded: str) -> None:
    assert classify(status, reply) == (recorded, None)


@pytest.mark.parametrize(
    ("status", "reply", "reason"),
    [
        ("5.7.1", "554 5.7.1 <a@b>: Relay access denied", "policy or security refusal"),
        ("", "550 5.7.1 Message rejected as spam", "policy or security refusal"),
        ("5.0.0", "550 5.7.1 relay denied", "policy or security refusal"),
        ("5.4.4", "Host or domain name not found", "network or routing problem"),
        ("5.3.4", "552 5.3.4 Message too big for system", "receiving mail system"),
        ("5.5.2", "500 5.5.2 Syntax error", "protocol error"),
        ("5.6.0", "554 5.6.0 Message content rejected", "content was refused"),
        ("5.2.3", "552 5.2.3 Message exceeds maximum size", "message was too large"),
        ("5.1.7", "553 5.1.7 Bad sender address syntax", "sender's address"),
        ("5.1.8", "553 5.1.8 Sender domain does not exist", "sender's address"),
        ("4.2.2", "452 4.2.2 Mailbox full, try later", "not a permanent failure"),
        ("", "451 Try again later", "not a permanent failure"),
        ("5.0.0", "554 Transaction failed", "does not say the mailbox is bad"),
        ("", "554 Transaction failed", "does not say the mailbox is bad"),
        ("", "", "no status code"),
    ],
)
def test_a_failure_that_is_not_the_recipients_fault_does_not_count(
    status: str, reply: str, reason: str
) -> None:
    excuse = classify(status, reply)[1]
    assert excuse is not None and reason in excuse


# --- Reading DSNs: `parse` (pure), on messages as Postfix writes them. ---


def test_a_postfix_dsn_gives_the_recipient_status_and_diagnostic() -> None:
    parsed = parse(message("postfix-user-unknown.eml"))
    assert parsed.skipped is None
    [failure] = parsed.bounces
    assert failure.address == "Gone@Example.NET"
    assert failure.status == "5.1.1"
    assert failure.diagnostic == (
        "550 5.1.1 <Gone@Example.NET>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert len(failure.fingerprint) == 64


def test_the_same_dsn_has_the_same_fingerprint_whatever_the_delivery_headers() -> None:
    raw = message("postfix-user-unknown.eml")
    again = b"Delivered-To: archive@press.example.org\n" + raw
    assert parse(raw).bounces[0].fingerprint == parse(again).bounces[0].fingerprint


def test_another_dsn_for_the_same_address_has_another_fingerprint() -> None:
    raw = message("postfix-user-unknown.eml")
    other = raw.replace(b"20261123050112.4C7A21E0F3A@", b"20261130050112.88D2E1E0F11@")
    assert parse(raw).bounces[0].fingerprint != parse(other).bounces[0].fingerprint


def test_without_a_message_id_the_bytes_make_the_fingerprint() -> None:
    raw = message("postfix-user-unknown.eml").replace(b"Message-Id:", b"X-Old-Message-Id:")
    assert parse(raw).bounces[0].fingerprint == parse(raw).bounces[0].fingerprint
    assert parse(raw).bounces[0].fingerprint != parse(raw + b"\n").bounces[0].fingerprint


def test_a_multi_recipient_dsn_counts_each_bad_mailbox_and_says_why_not_the_rest() -> None:
    parsed = parse(message("postfix-three-recipients.eml"))
    assert parsed.skipped is None
    assert [(f.address, f.status) for f in parsed.bounces] == [
        ("left@agency.example", "5.1.1"),
        ("full@agency.example", "5.2.2"),
    ]
    [other] = [f for f in parsed.failures if f.excuse is not None]
    assert (other.address, other.status) == ("desk@nowhere.example", "5.4.4")
    assert other.diagnostic.startswith("Host or domain name not found.")
    assert len({f.fingerprint for f in parsed.failures}) == 3


def test_a_delayed_dsn_is_skipped() -> None:
    parsed = parse(message("postfix-delayed.eml"))
    assert parsed.failures == ()
    assert parsed.skipped == (
        "no permanent failure of a recipient: desk@slow.example.com: delayed (4.4.1)"
    )


def test_a_policy_refusal_is_reported_and_skipped() -> None:
    parsed = parse(message("postfix-relay-denied.eml"))
    assert parsed.bounces == ()
    [failure] = parsed.failures
    assert (failure.address, failure.status) == ("editor@strict.example.org", "5.7.1")
    assert parsed.skipped is not None
    assert "editor@strict.example.org: 5.7.1 is a policy or security refusal" in parsed.skipped


def test_an_auto_reply_is_skipped_as_not_a_dsn() -> None:
    assert parse(message("auto-reply.eml")) == Parsed(
        skipped="not a delivery status notification (text/plain, Auto-Submitted: auto-replied)"
    )


def test_a_failed_but_temporary_status_does_not_count() -> None:
    raw = message("postfix-user-unknown.eml").replace(b"Status: 5.1.1", b"Status: 4.4.7")
    parsed = parse(raw)
    assert parsed.failures == ()
    assert parsed.skipped is not None and "Gone@Example.NET: failed (4.4.7)" in parsed.skipped


def test_the_original_recipient_is_the_address_we_sent_to() -> None:
    raw = message("postfix-user-unknown.eml").replace(
        b"Final-Recipient: rfc822; Gone@Example.NET", b"Final-Recipient: rfc822; gone@mx1.internal"
    )
    assert parse(raw).bounces[0].address == "Gone@Example.NET"
    without = raw.replace(b"Original-Recipient: rfc822;Gone@Example.NET\n", b"")
    assert parse(without).bounces[0].address == "gone@mx1.internal"


def test_a_complaint_report_is_not_a_bounce() -> None:
    raw = message("postfix-user-unknown.eml").replace(
        b"report-type=delivery-status", b"report-type=feedback-report"
    )
    skipped = parse(raw).skipped
    assert skipped is not None and "a complaint (ARF), not a bounce" in skipped


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n"
        b"--x\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; a\n\n"
        b"Final-Recipient: x400; C=TR\nAction: failed\nStatus: 5.1.1\n--x--\n",
    ],
)
def test_a_malformed_message_is_skipped_never_an_error(raw: bytes) -> None:
    parsed = parse(raw)
    assert parsed.bounces == () and parsed.skipped


# --- Reading files. ---


def test_a_maildir_gives_every_message_of_cur_and_new_but_not_tmp(tmp_path: Path) -> None:
    for folder in ("cur", "new", "tmp"):
        (tmp_path / folder).mkdir()
    (tmp_path / "cur" / "1795413672.M1P2.mail:2,S").write_bytes(b"one")
    (tmp_path / "new" / "1795413673.M1P3.mail").write_bytes(b"two")
    (tmp_path / "tmp" / "1795413674.M1P4.mail").write_bytes(b"half-written")
    assert [data for _, data in read_messages(message_files(tmp_path))] == [b"one", b"two"]


def test_a_plain_folder_gives_its_eml_files(tmp_path: Path) -> None:
    (tmp_path / "b.eml").write_bytes(b"b")
    (tmp_path / "a.eml").write_bytes(b"a")
    (tmp_path / "notes.txt").write_bytes(b"not mail")
    assert [(f.name, data) for f, data in read_messages(message_files(tmp_path))] == [
        ("a.eml", b"a"),
        ("b.eml", b"b"),
    ]


def test_a_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        message_files(tmp_path / "missing.eml")


# --- The command. ---

LISTS = """\
mail: {bounce_limit: 2}
lists:
  weekly:
    title: Weekly digest
    schedule: "0 8 * * mon"
    subscribers: lists/weekly.yaml
"""


@pytest.fixture
def maildir(project: Path, write_config: WriteConfig) -> Path:
    """A list with Gone@Example.NET on it, bounce_limit 2, and a Maildir holding a DSN for
    that address (in new/) and an auto-reply (in cur/)."""
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "weekly.yaml").write_text(
        "subscribers:\n  - gone@example.net\n  - desk@example.com\n", encoding="utf-8"
    )
    write_config(BASE_CONFIG + LISTS)
    folder = project / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    shutil.copy(MESSAGES / "postfix-user-unknown.eml", folder / "new" / "1795413672.V1I2.mail")
    shutil.copy(MESSAGES / "auto-reply.eml", folder / "cur" / "1795413685.V1I3.mail:2,S")
    return folder


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_syndicate(project, *args)


def statuses(project: Path) -> dict[str, str]:
    listed = run(project, "subscribers", "list", "weekly", "--json")
    assert listed.returncode == 0, listed.stderr
    return {row["email"]: row["status"] for row in json.loads(listed.stdout)}


def test_a_maildir_processed_twice_counts_each_dsn_once_and_suppresses_at_the_limit(
    project: Path, maildir: Path
) -> None:
    first = run(project, "bounces", "process", "Maildir")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "Maildir/cur/1795413685.V1I3.mail:2,S: skipped: not a delivery status notification "
        "(text/plain, Auto-Submitted: auto-replied)",
        "Maildir/new/1795413672.V1I2.mail: bounce Gone@Example.NET (5.1.1) recorded",
        "processed 2 messages: 1 bounces recorded (0 already known), "
        "0 addresses suppressed, 1 skipped",
    ]
    again = run(project, "bounces", "process", "Maildir")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == (
        "processed 2 messages: 0 bounces recorded (1 already known), "
        "0 addresses suppressed, 1 skipped"
    )
    assert statuses(project)["gone@example.net"] == "active"  # one bounce; the limit is 2

    second = message("postfix-user-unknown.eml").replace(
        b"20261123050112.4C7A21E0F3A@", b"20261130050112.88D2E1E0F11@"
    )
    (maildir / "new" / "1796018472.V1I9.mail").write_bytes(second)
    third = run(project, "bounces", "process", "Maildir")
    assert third.returncode == 0, third.stderr
    assert "Maildir/new/1796018472.V1I9.mail: bounce Gone@Example.NET (5.1.1) recorded, " in (
        third.stdout
    )
    assert "suppressed from every list" in third.stdout
    assert third.stdout.splitlines()[-1] == (
        "processed 3 messages: 1 bounces recorded (1 already known), "
        "1 addresses suppressed, 1 skipped"
    )
    assert statuses(project) == {"gone@example.net": "bounced", "desk@example.com": "active"}


def test_json_gives_every_message_and_the_totals(project: Path, maildir: Path) -> None:
    shutil.copy(MESSAGES / "postfix-three-recipients.eml", maildir / "new" / "1795413700.V1I4")
    result = run(project, "bounces", "process", "Maildir", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {k: v for k, v in report.items() if k != "messages"} == {
        "processed": 3,
        "recorded": 3,
        "known": 0,
        "suppressed": 0,
        "skipped": 1,
    }
    multi = next(m for m in report["messages"] if m["file"].endswith("1795413700.V1I4"))
    assert [b["address"] for b in multi["bounces"]] == [
        "left@agency.example",
        "full@agency.example",
    ]
    assert multi["not_counted"][0]["address"] == "desk@nowhere.example"
    assert "network or routing" in multi["not_counted"][0]["reason"]


def test_a_single_eml_file_can_be_processed(project: Path, maildir: Path) -> None:
    shutil.copy(MESSAGES / "postfix-three-recipients.eml", project / "dsn.eml")
    result = run(project, "bounces", "process", "dsn.eml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "dsn.eml: bounce left@agency.example (5.1.1) recorded",
        "dsn.eml: bounce full@agency.example (5.2.2) recorded",
        "dsn.eml: not counted desk@nowhere.example: 5.4.4 is a network or routing problem, "
        "not the recipient's fault",
        "processed 1 messages: 2 bounces recorded (0 already known), "
        "0 addresses suppressed, 0 skipped",
    ]


def test_a_missing_path_is_one_line_on_stderr_and_exit_2(project: Path, maildir: Path) -> None:
    result = run(project, "bounces", "process", "Mailbox")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: Mailbox: no such file or folder; give an .eml file, a Maildir or a folder of "
        ".eml files\n"
    )
    assert not (project.parent / "var" / "test.db").exists()  # a typo makes no database


def test_the_limit_defaults_to_one_bounce(project: Path, write_config: WriteConfig) -> None:
    (project / "config" / "lists").mkdir()
    (project / "config" / "lists" / "weekly.yaml").write_text(
        "subscribers: [gone@example.net]\n", encoding="utf-8"
    )
    write_config(
        BASE_CONFIG
        + textwrap.dedent("""\
        lists:
          weekly: {title: Weekly, schedule: "0 8 * * mon", subscribers: lists/weekly.yaml}
        """)
    )
    shutil.copy(MESSAGES / "postfix-user-unknown.eml", project / "dsn.eml")
    result = run(project, "bounces", "process", "dsn.eml")
    assert result.returncode == 0, result.stderr
    assert "1 addresses suppressed" in result.stdout
    assert statuses(project) == {"gone@example.net": "bounced"}

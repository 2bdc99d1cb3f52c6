"""Hard bounces: which permanent failures are the recipient's fault, reading them from
delivery status notifications (DSNs, RFC 3464) and from 5xx replies to RCPT, and recording
them so that an address is suppressed from every list after `mail.bounce_limit` of them.

What counts as a hard bounce (`classify`) — the recipient's address is dead, so sending again
is pointless and harms the sender's reputation:

- 5.1.x: the address is bad (5.1.1 no such mailbox, 5.1.2 no such domain, 5.1.3 bad syntax,
  5.1.6 moved, 5.1.10 null MX…), except 5.1.7 and 5.1.8, which are about *our* sender address;
- 5.2.x: the mailbox cannot take mail (5.2.1 disabled, 5.2.2 full: the server said
  "permanent", and `mail.bounce_limit` above 1 tolerates the odd one), except 5.2.3, a message
  too large, which is the message's fault;
- 5.0.0 (or no enhanced status code at all) only with the SMTP reply 550, 551 or 553 (mailbox
  unavailable, not local, name not allowed), the replies a server gives to RCPT for a bad
  recipient. When the status is 5.0.0 and the reply carries a more precise code
  ("550 5.7.1 …"), that code decides.

What does not count: 4.x.x (temporary; the reporting server retried or will retry), 5.3.x
(the receiving system), 5.4.x (network and routing; note that Postfix reports a domain that
does not exist as 5.4.4, so those are not counted either), 5.5.x (protocol), 5.6.x (content)
and 5.7.x (policy and security: spam filters, "relay denied", blocklists). These say something
about the sender, the message or the servers, not that the address is dead; suppressing on them
would let one blocklisting take a whole list down. In the live path only a 5xx to RCPT can
count: a 5xx to MAIL FROM or to the message data is about the sender or the message.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from syndicate.errors import InputError
from syndicate.files import display
from syndicate.store import Store
from syndicate.store import bounces as store_bounces
from syndicate.store.bounces import Bounce
from syndicate.store.suppressions import key

MAILBOX_REPLIES = frozenset({550, 551, 553})  # RCPT replies that say the mailbox is bad
REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")  # RFC 3464, 6533
_KINDS = ("delivery-status", "global-delivery-status")  # multipart/report; report-type=…

_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_TYPE = re.compile(r"^[A-Za-z][\w.-]*\s*;\s*")  # "smtp; " before a Diagnostic-Code's text
_REPLY = re.compile(r"\s*([2-5]\d\d)(?:[ -]+([245]\.\d{1,3}\.\d{1,3})(?![\d.]))?")


# --- Deciders: pure. ---


def _enhanced(text: str) -> tuple[int, int, int] | None:
    match = _ENHANCED.match(text.strip())
    if match is None:
        return None
    klass, subject, detail = (int(g) for g in match.groups())
    return klass, subject, detail


def _reply(text: str) -> tuple[int | None, tuple[int, int, int] | None]:
    """The reply code and the enhanced status code at the start of an SMTP reply."""
    match = _REPLY.match(text)
    if match is None:
        return None, None
    return int(match[1]), _enhanced(match[2]) if match[2] else None


def _excuse(status: tuple[int, int, int], reply_code: int | None) -> str | None:
    klass, subject, detail = status
    shown = ".".join(map(str, status))
    if klass != 5:
        return f"{shown} is not a permanent failure"
    if subject == 1:
        if detail in (7, 8):
            return f"{shown} is about the sender's address, not the recipient's"
        return None
    if subject == 2:
        if detail == 3:
            return f"{shown}: the message was too large, not the recipient's fault"
        return None
    if subject == 0:
        if reply_code in MAILBOX_REPLIES:
            return None
        return f"{shown} with reply {reply_code or 'none'} does not say the mailbox is bad"
    return {
        3: f"{shown} is a problem of the receiving mail system, not of the recipient",
        4: f"{shown} is a network or routing problem, not the recipient's fault",
        5: f"{shown} is an SMTP protocol error, not the recipient's fault",
        6: f"{shown}: the message's content was refused, not the recipient's fault",
        7: f"{shown} is a policy or security refusal (spam filter, relay denied), "
        "not the recipient's fault",
    }.get(subject, f"{shown} is not a status this classification knows")


def classify(status: str, reply: str) -> tuple[str, str | None]:
    """(the status to record, why it does not count or None for a hard bounce) for a failure
    with the enhanced `status` (from a DSN; "" for a live reply) and the SMTP `reply` (a DSN's
    diagnostic text, or the live reply "550 5.1.1 No such user"). The rules are in the module
    docstring."""
    reply_code, from_reply = _reply(reply)
    enhanced = _enhanced(status) or from_reply
    if (
        enhanced is not None
        and enhanced[1:] == (0, 0)
        and from_reply is not None
        and from_reply[0] == enhanced[0]
    ):
        enhanced = from_reply  # "5.0.0" with "550 5.7.1 …": the reply is the precise one
    if enhanced is not None:
        return ".".join(map(str, enhanced)), _excuse(enhanced, reply_code)
    if reply_code is None:
        return "", "no status code"
    if reply_code // 100 != 5:
        return str(reply_code), f"{reply_code} is not a permanent failure"
    if reply_code in MAILBOX_REPLIES:
        return str(reply_code), None
    return str(reply_code), f"{reply_code} does not say the mailbox is bad"


def fingerprint(basis: bytes, address: str) -> str:
    """The same report about the same recipient gives the same fingerprint."""
    digest = hashlib.sha256(basis)
    digest.update(b"\0")
    digest.update(key(address).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Failure:
    """A per-recipient block of a DSN with Action: failed and a 5.x.x status."""

    address: str
    status: str
    diagnostic: str  # the Diagnostic-Code's text, one line, without its type ("smtp;")
    excuse: str | None  # why it is not the recipient's fault; None: a hard bounce
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one message says: its permanent failures, or why nothing was taken from it."""

    failures: tuple[Failure, ...] = ()
    skipped: str | None = None  # set when no failure counts

    @property
    def bounces(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.excuse is None)


def _one_line(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def _typed(value: str) -> tuple[str, str]:
    """'rfc822; a@b' → ('rfc822', 'a@b'); a value without a type is taken as an address."""
    kind, sep, rest = value.partition(";")
    if not sep:
        return "rfc822", value.strip().strip("<>")
    return kind.strip().casefold(), rest.strip().strip("<>").strip()


def _recipient(block: Message) -> str:
    """The address we sent to: the Original-Recipient when the DSN gives it (the envelope
    address, before any alias or forward expanded it), else the Final-Recipient."""
    for name in ("Original-Recipient", "Final-Recipient"):
        kind, address = _typed(_one_line(block.get(name)))
        if kind in ("rfc822", "utf-8") and "@" in address:
            return address
    return ""


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part: per-message fields, then one block per
    recipient. The email package splits message/delivery-status itself; the RFC 6533 type,
    or a transfer-encoded part, is split here."""
    payload = part.get_payload()
    if isinstance(payload, list) and part.get("Content-Transfer-Encoding") is None:
        return [p for p in payload if isinstance(p, Message)]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [HeaderParser(policy=policy.compat32).parsestr(c) for c in chunks if c.strip()]


def _not_a_dsn(message: Message) -> str:
    kind = message.get_content_type()
    auto = _one_line(message.get("Auto-Submitted"))
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        auto = auto or "auto-replied"
    what = f"{kind}, Auto-Submitted: {auto}" if auto and auto != "no" else kind
    if kind == "multipart/report":
        report = str(message.get_param("report-type") or "")
        if report.casefold() in _KINDS:
            return "a delivery-status report without its message/delivery-status part"
        what = f"{kind}; report-type={report or 'none'}"
        if report.casefold() == "feedback-report":
            what += ": a complaint (ARF), not a bounce"
    return f"not a delivery status notification ({what})"


def parse(data: bytes) -> Parsed:
    """The permanent failures a DSN reports, each classified; or why the message is skipped
    (not a DSN, nothing failed for good, nothing the recipient is at fault for). Never raises
    for a message, however malformed."""
    try:
        return _parse(data)
    except Exception as exc:  # mail from anywhere: any oddity of the email package is a skip
        return Parsed(skipped=f"cannot be read as a message: {exc}")


def _parse(data: bytes) -> Parsed:
    message = email.message_from_bytes(data, policy=policy.compat32)
    report = next(
        (
            part
            for part in (message.get_payload() if message.is_multipart() else [])
            if isinstance(part, Message) and part.get_content_type() in REPORT_TYPES
        ),
        None,
    )
    kind = str(message.get_param("report-type") or "delivery-status").casefold()
    if message.get_content_type() != "multipart/report" or report is None or kind not in _KINDS:
        return Parsed(skipped=_not_a_dsn(message))
    message_id = _one_line(message.get("Message-ID"))
    basis = message_id.encode("utf-8", "surrogateescape") if message_id else data
    failures: list[Failure] = []
    others: list[str] = []
    blocks = _blocks(report)
    if blocks and blocks[0].get("Final-Recipient") is None:
        blocks = blocks[1:]  # the per-message fields (Reporting-MTA…), when there are any
    for block in blocks:
        address = _recipient(block)
        action = _one_line(block.get("Action")).casefold() or "no action"
        status = _one_line(block.get("Status")).split(" ")[0]
        klass = _enhanced(status)
        if not address:
            final = _one_line(block.get("Final-Recipient")) or "none"
            others.append(f"no email address in Final-Recipient ({final})")
        elif action != "failed" or klass is None or klass[0] != 5:
            others.append(f"{address}: {action} ({status or 'no status'})")
        else:
            diagnostic = _TYPE.sub("", _one_line(block.get("Diagnostic-Code")), count=1)
            recorded, excuse = classify(status, diagnostic)
            failures.append(
                Failure(address, recorded, diagnostic, excuse, fingerprint(basis, address))
            )
    skipped = None
    if not any(f.excuse is None for f in failures):
        reasons = [f"{f.address}: {f.excuse}" for f in failures] + others
        skipped = "no permanent failure of a recipient: " + "; ".join(reasons or ["no recipients"])
    return Parsed(tuple(failures), skipped)


# --- Reading messages from files. ---


def message_files(path: Path) -> list[Path]:
    """The files of `path`: itself, when a file of one message; every message of a Maildir
    (cur/ and new/; tmp/ holds messages still being written); or every .eml file of a folder.
    Raises InputError when `path` itself cannot be read, before anything is opened or stored."""
    label = display(path)
    try:
        if not path.is_dir():
            with path.open("rb"):  # missing or unreadable: an error now, not a skipped file
                return [path]
        maildir = [folder for folder in (path / "cur", path / "new") if folder.is_dir()]
        if maildir:
            return sorted(
                f
                for folder in maildir
                for f in folder.iterdir()
                if f.is_file() and not f.name.startswith(".")
            )
        return sorted(f for f in path.iterdir() if f.suffix == ".eml" and f.is_file())
    except FileNotFoundError:
        raise InputError(
            f"{label}: no such file or folder; give an .eml file, a Maildir or a folder of .eml "
            "files"
        ) from None
    except OSError as exc:
        raise InputError(f"{label}: cannot read: {exc.strerror or exc}") from None


def read_messages(files: list[Path]) -> Iterator[tuple[Path, bytes | str]]:
    """(file, its bytes or why it cannot be read), for each of `files` (`message_files`)."""
    for file in files:
        try:
            yield file, file.read_bytes()
        except OSError as exc:
            yield file, f"cannot read: {exc.strerror or exc}"


# --- Recording. ---


@dataclass(frozen=True, slots=True)
class Counted:
    failure: Failure
    new: bool  # False: this report had been recorded before
    suppressed: bool  # it brought the address to the limit: suppressed from every list now


@dataclass
class Processed:
    file: str
    counted: list[Counted] = field(default_factory=list)
    not_counted: list[Failure] = field(default_factory=list)
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "bounces": [
                {
                    "address": c.failure.address,
                    "status": c.failure.status,
                    "diagnostic": c.failure.diagnostic,
                    "new": c.new,
                    "suppressed": c.suppressed,
                }
                for c in self.counted
            ],
            "not_counted": [
                {
                    "address": f.address,
                    "status": f.status,
                    "diagnostic": f.diagnostic,
                    "reason": f.excuse,
                }
                for f in self.not_counted
            ],
            "skipped": self.skipped,
        }


@dataclass
class Report:
    messages: list[Processed] = field(default_factory=list)

    @property
    def recorded(self) -> int:
        return sum(c.new for m in self.messages for c in m.counted)

    @property
    def known(self) -> int:
        return sum(not c.new for m in self.messages for c in m.counted)

    @property
    def suppressed(self) -> int:
        return sum(c.suppressed for m in self.messages for c in m.counted)

    @property
    def skipped(self) -> int:
        return sum(m.skipped is not None for m in self.messages)

    def summary(self) -> str:
        return (
            f"processed {len(self.messages)} messages: {self.recorded} bounces recorded "
            f"({self.known} already known), {self.suppressed} addresses suppressed, "
            f"{self.skipped} skipped"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": [m.to_dict() for m in self.messages],
            "processed": len(self.messages),
            "recorded": self.recorded,
            "known": self.known,
            "suppressed": self.suppressed,
            "skipped": self.skipped,
        }


def process(store: Store, files: list[Path], *, limit: int, now: datetime) -> Report:
    """Read every message of `files` (`message_files`), record each hard bounce once, and
    suppress from every list each address that reaches `limit` bounces. One transaction per
    message."""
    report = Report()
    for file, data in read_messages(files):
        label = display(file)
        parsed = parse(data) if isinstance(data, bytes) else Parsed(skipped=data)
        done = Processed(label, skipped=parsed.skipped)
        done.not_counted = [f for f in parsed.failures if f.excuse is not None]
        if parsed.bounces:
            with store.begin() as conn:
                for failure in parsed.bounces:
                    bounce = Bounce(
                        failure.address,
                        failure.status,
                        failure.diagnostic,
                        f"DSN {label}",
                        failure.fingerprint,
                    )
                    recorded = store_bounces.record_and_suppress(conn, bounce, limit, now)
                    done.counted.append(Counted(failure, recorded.new, recorded.suppressed))
        report.messages.append(done)
    return report


def record_refusal(
    conn: Connection, delivery_id: int, reply: str, limit: int, now: datetime
) -> store_bounces.Recorded | None:
    """A 5xx reply to RCPT for a digest delivery (the live path), in the caller's transaction:
    recorded as a hard bounce when `classify` holds it against the recipient (None when it
    does not). Fingerprinted by the delivery, so a retried delivery counts once."""
    status, excuse = classify("", reply)
    address = store_bounces.delivery_address(conn, delivery_id)
    if excuse is not None or address is None:
        return None
    bounce = Bounce(
        address,
        status,
        " ".join(reply.split()),
        f"RCPT reply to delivery {delivery_id}",
        fingerprint(f"delivery {delivery_id}".encode(), address),
    )
    return store_bounces.record_and_suppress(conn, bounce, limit, now)

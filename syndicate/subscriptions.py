"""Who is subscribed to what: the admins' list files (config/lists/*.yaml), read with
FILE:LINE errors and edited by the `syndicate subscribers` commands, joined by the confirmed
self-service subscriptions in the store; each subscriber's own topic choice wins, and the
suppression table has the last word."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from sqlalchemy.engine import Connection

from syndicate import liststream
from syndicate.addresses import normalise_address
from syndicate.config import Config, MailingList
from syndicate.errors import ConfigError, ListEditError
from syndicate.files import Utf8Error, decode_utf8, display, read_utf8, write_if_changed
from syndicate.listfile import LayoutError, append
from syndicate.listfile import remove as remove_entries
from syndicate.model import Subscriber
from syndicate.store import Store
from syndicate.store import subscriptions as store_subscriptions
from syndicate.store import suppressions as store_suppressions
from syndicate.store.subscriptions import Resubscription
from syndicate.store.subscriptions import State as SubscriptionState
from syndicate.store.suppressions import EVERY_LIST, Reason
from syndicate.store.suppressions import key as suppression_key
from syndicate.text import name_text
from syndicate.yamlfile import parse_yaml

ENTRY_KEYS = ("email", "name", "topics")


@dataclass
class ListFile:
    """The subscribers read from one list file, and every problem found, as FILE:LINE lines."""

    subscribers: list[Subscriber] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # casefolded address → 1-based line


def allowed_topics(config: Config, mailing_list: MailingList) -> list[str]:
    """The topics a subscriber of this list may narrow to."""
    return list(config.topics) if "all" in mailing_list.topics else list(mailing_list.topics)


def read_list_file(config: Config, slug: str) -> ListFile:
    """Every subscriber of list `slug` from its file; a missing `subscribers:` key is an
    empty list (self-service only)."""
    path = config.lists[slug].subscribers
    if path is None:
        return ListFile()
    label = display(path)
    try:
        text = read_utf8(path, label, ConfigError, field="encoding")
    except ConfigError as exc:
        return ListFile(problems=[str(exc)])
    return parse_list_text(config, slug, text, label)


def parse_list_text(config: Config, slug: str, text: str, label: str) -> ListFile:
    """The subscribers of list `slug` in `text` (its file's content, named `label`), with
    every problem as a FILE:LINE line: the rules of `syndicate check`, also applied to an
    edited file before it is written."""
    mailing_list = config.lists[slug]
    result = ListFile()
    try:
        data = parse_yaml(text, label)
    except ConfigError as exc:
        result.problems.append(str(exc))
        return result
    if data is None:
        return result
    if isinstance(data, CommentedMap):
        for key in data:
            if key != "subscribers":
                result.problems.append(
                    f"{label}:{data.lc.key(key)[0] + 1}: {key}: unknown key "
                    "(a list file holds only 'subscribers')"
                )
        if "subscribers" not in data:
            return result
    entries = data.get("subscribers") if isinstance(data, CommentedMap) else None
    if not isinstance(entries, CommentedSeq):
        line = data.lc.key("subscribers")[0] + 1 if isinstance(data, CommentedMap) else 1
        result.problems.append(f"{label}:{line}: subscribers: expected a list of addresses")
        return result
    allowed = allowed_topics(config, mailing_list)
    for number, entry in enumerate(entries):
        line = entries.lc.item(number)[0] + 1
        where = f"{label}:{line}: subscribers[{number}]"
        try:
            subscriber = _subscriber(entry, allowed)
        except ValueError as exc:
            result.problems.append(f"{where}{exc}")
            continue
        first = result.lines.get(subscriber.address.casefold())
        if first is not None:
            result.problems.append(
                f"{where}: {subscriber.address} is already listed on line {first}"
            )
            continue
        result.lines[subscriber.address.casefold()] = line
        result.subscribers.append(subscriber)
    return result


def _subscriber(entry: Any, allowed: list[str]) -> Subscriber:
    """One entry: a bare address, or {email, name, topics}. ValueError text starts with the
    sub-field (': message' or '.field: message') so the caller can prefix the place."""
    if isinstance(entry, str):
        return Subscriber(_address(entry, ""))
    if not isinstance(entry, dict):
        raise ValueError(": expected an address or a mapping with 'email'")
    for key in entry:
        if key not in ENTRY_KEYS:
            raise ValueError(f".{key}: unknown key; expected one of: {', '.join(ENTRY_KEYS)}")
    if "email" not in entry:
        raise ValueError(".email: required, but missing")
    address = _address(entry["email"], ".email")
    name = entry.get("name") or ""
    if not isinstance(name, str):
        raise ValueError(f".name: expected text, got {name!r}")
    topics = entry.get("topics") or []
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise ValueError(".topics: expected a list of topic slugs")
    for topic in topics:
        if topic not in allowed:
            raise ValueError(
                f".topics: {topic!r} is not a topic of this list; known: {', '.join(allowed)}"
            )
    return Subscriber(address, name_text(name), tuple(dict.fromkeys(topics)))


def _address(value: Any, field_name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field_name}: expected an address, got {value!r}")
    try:
        return normalise_address(value)
    except ValueError as exc:
        raise ValueError(f"{field_name}: {exc}") from None


def check_lists(config: Config) -> Iterator[str]:
    """Problems in every list file, for `syndicate check`."""
    for slug in config.lists:
        yield from read_list_file(config, slug).problems


def suppressed_entries(conn: Connection, config: Config) -> Iterator[str]:
    """FILE:LINE notes for `syndicate check`: entries still listed whose address gets
    nothing (not an error: the suppression wins, and it is never lost by editing the file)."""
    for slug, mailing_list in config.lists.items():
        read = read_list_file(config, slug)
        if mailing_list.subscribers is None or not read.subscribers:
            continue
        label = display(mailing_list.subscribers)
        blocked = store_suppressions.of(conn, slug, (s.address for s in read.subscribers))
        for subscriber in read.subscribers:
            row = blocked.get(suppression_key(subscriber.address))
            if row is not None:
                line = read.lines[subscriber.address.casefold()]
                yield f"{label}:{line}: {subscriber.address} gets no mail: {row.describe()}"


def recipients(conn: Connection, config: Config, slug: str) -> Iterator[Subscriber]:
    """Everyone the list goes to before suppressions, one at a time (a list may have
    hundreds of thousands): the list file's subscribers, then the confirmed self-service ones
    not in the file, each with their own topic choice if they made one. A broken list file
    raises ConfigError, possibly after some were yielded: the caller's transaction must
    roll back, so a digest never half-sends."""
    choices = store_subscriptions.topic_choices_of(conn, slug)
    listed: set[str] = set()
    for person in _file_subscribers(config, slug):
        listed.add(person.address.casefold())
        key = suppression_key(person.address)
        yield Subscriber(person.address, person.name, choices.get(key, person.topics))
    for row in store_subscriptions.of_list(conn, slug):
        if row.state is SubscriptionState.ACTIVE and row.email.casefold() not in listed:
            yield Subscriber(row.email, "", choices.get(suppression_key(row.email), row.topics))


def _file_subscribers(config: Config, slug: str) -> Iterator[Subscriber]:
    """The list file's subscribers: read fast, and carefully when the fast reader is unsure
    (then the careful reader's problems are raised, or its subscribers not yet given are)."""
    path = config.lists[slug].subscribers
    if path is None:
        return
    given = 0
    try:
        allowed = frozenset(allowed_topics(config, config.lists[slug]))
        for person in liststream.subscribers(path, allowed):
            yield person
            given += 1
        return
    except (liststream.Unusual, OSError):
        pass
    read = read_list_file(config, slug)
    if read.problems:
        raise ConfigError("\n".join(read.problems))
    yield from read.subscribers[given:]


# --- The admins' commands: list, add, remove, import, export ------------------------------


CONFIG_SOURCE = "config"
OWN_WISHES = (Reason.UNSUBSCRIBED, Reason.COMPLAINED)  # suppressions only the reader may undo
SELF_SERVICE_SOURCE = "self-service"


@dataclass(frozen=True)
class Listed:
    """A subscriber as `syndicate subscribers list` shows them."""

    subscriber: Subscriber
    source: str
    status: str  # 'active', 'pending' (not confirmed), or the reason of a suppression

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.subscriber.address,
            "name": self.subscriber.name,
            "topics": list(self.subscriber.topics),
            "source": self.source,
            "status": self.status,
        }


def listing(conn: Connection, config: Config, slug: str) -> tuple[list[Listed], list[str]]:
    """Every subscriber of the list, from its file and from self-service, with their status
    and their topics as digests use them; and the file's problems."""
    read = read_list_file(config, slug)
    found = [(s, CONFIG_SOURCE, "active") for s in read.subscribers]
    for own in store_subscriptions.of_list(conn, slug):
        if own.email.casefold() not in read.lines:
            found.append((Subscriber(own.email, "", own.topics), SELF_SERVICE_SOURCE, own.state))
    blocked = store_suppressions.of(conn, slug, (s.address for s, _, _ in found))
    choices = store_subscriptions.topic_choices_of(conn, slug)
    out = []
    for subscriber, source, status in found:
        address = suppression_key(subscriber.address)
        row = blocked.get(address)
        topics = choices.get(address, subscriber.topics)
        chosen = Subscriber(subscriber.address, subscriber.name, topics)
        out.append(Listed(chosen, source, row.reason if row and status == "active" else status))
    return out, read.problems


def list_path(config: Config, slug: str) -> Path:
    """The list's file; a list without one is a mistake naming the key to set."""
    path = config.lists[slug].subscribers
    if path is None:
        raise ListEditError(
            f"list {slug!r} has no subscribers file; set lists.{slug}.subscribers in "
            f"{display(config.path)} (for example lists/{slug}.yaml) and create that file "
            "with 'subscribers: []'"
        )
    return path


@dataclass
class _Edit:
    """A list file as read for editing: its text, and what the rules make of it."""

    path: Path
    label: str
    bom: bytes
    text: str
    current: ListFile


def _open(config: Config, slug: str) -> _Edit:
    path = list_path(config, slug)
    label = display(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ListEditError(f"{label}: file not found; create it with 'subscribers: []'") from None
    except OSError as exc:
        raise ListEditError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        text = decode_utf8(raw)
    except Utf8Error as exc:
        raise ListEditError(f"{label}:{exc.line}: {exc}") from None
    bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
    return _Edit(path, label, bom, text, parse_list_text(config, slug, text, label))


def _splice(edit: _Edit, change: Callable[[str, str], str]) -> str:
    try:
        return change(edit.text, edit.label)
    except LayoutError as exc:
        raise ListEditError(f"{edit.label}:{exc.line}: {exc}") from None
    except ConfigError as exc:  # unparseable YAML
        raise ListEditError(str(exc)) from None


def _save(config: Config, slug: str, edit: _Edit, text: str, expected: list[Subscriber]) -> None:
    """Validate the edited text with the rules of `syndicate check`, then replace the file
    atomically; on any problem nothing is written."""
    after = parse_list_text(config, slug, text, edit.label)
    if after.problems:
        raise ListEditError(
            "nothing written; the file would have these problems (fix them first):\n"
            + "\n".join(after.problems)
        )
    if after.subscribers != expected:  # the splice touched another entry: never write that
        raise ListEditError(
            f"{edit.label}: this edit cannot be made safely by line; nothing written; "
            "edit the file by hand"
        )
    write_if_changed(edit.path, edit.bom + text.encode("utf-8"))


def _refusal(config: Config, slug: str, edit: _Edit, subscriber: Subscriber) -> str | None:
    """Why `subscriber` cannot join the file as it stands (None: it can)."""
    line = edit.current.lines.get(subscriber.address.casefold())
    if line is not None:
        return f"{subscriber.address} is already listed in {edit.label}:{line}"
    allowed = allowed_topics(config, config.lists[slug])
    for topic in subscriber.topics:
        if topic not in allowed:
            return f"{topic!r} is not a topic of list {slug!r}; known: {', '.join(allowed)}"
    return None


def make_subscriber(address: str, name: str = "", topics: Iterable[str] = ()) -> Subscriber:
    """A subscriber from what an admin typed; ValueError says what is wrong."""
    return Subscriber(
        normalise_address(address),
        name_text(name),
        tuple(dict.fromkeys(t.strip() for t in topics if t.strip())),
    )


def add(
    config: Config,
    store: Store,
    slug: str,
    subscriber: Subscriber,
    *,
    now: datetime,
    by: str,
    resubscribe: bool = False,
) -> list[Resubscription]:
    """Append `subscriber` to the list's file. A suppressed address is refused unless
    `resubscribe`, which lifts the list's own suppression and records who (`by`) and when
    (returned), in the transaction that commits only once the file is written. A
    suppression from every list ('*', e.g. "leave every list" on the preferences page) is
    lifted here when it was their own wish (unsubscribed, complained): only their own
    confirmation can narrow it; one for a bounce is narrowed to the other lists."""
    edit = _open(config, slug)
    reason = _refusal(config, slug, edit, subscriber)
    if reason:
        raise ListEditError(reason)
    text = _splice(edit, lambda text, label: append(text, label, [subscriber]))
    with store.begin() as conn:
        address = suppression_key(subscriber.address)
        row = store_suppressions.of(conn, slug, [address]).get(address)
        everywhere = store_suppressions.of(conn, EVERY_LIST, [address]).get(address)
        if everywhere is not None and everywhere.reason in OWN_WISHES:
            raise ListEditError(
                f"{subscriber.address} is suppressed: {everywhere.describe()}; that was their "
                "own wish for every list, so only they can undo it, by subscribing on the site"
            )
        if row is not None and not resubscribe:
            raise ListEditError(
                f"{subscriber.address} is suppressed: {row.describe()}; add --resubscribe "
                "only if they asked to be added back"
            )
        lifted = (
            store_subscriptions.lift(conn, address, slug, config.lists, before=now, by=by, now=now)
            if row is not None
            else []
        )
        _save(config, slug, edit, text, [*edit.current.subscribers, subscriber])
    return lifted


def remove(config: Config, slug: str, address: str) -> list[int]:
    """Delete every entry of `address` (normalised, whatever the case) from the list's file;
    the lines it was on. Suppressions are untouched."""
    try:
        wanted = normalise_address(address).casefold()
    except ValueError as exc:
        raise ListEditError(str(exc)) from None
    edit = _open(config, slug)
    data = parse_yaml(edit.text, edit.label)
    entries = data.get("subscribers") if isinstance(data, CommentedMap) else None
    numbers: list[int] = []
    lines: list[int] = []
    if isinstance(entries, CommentedSeq):
        for number, entry in enumerate(entries):
            value = entry.get("email") if isinstance(entry, dict) else entry
            try:
                found = isinstance(value, str) and normalise_address(value).casefold() == wanted
            except ValueError:
                found = False
            if found:
                numbers.append(number)
                lines.append(entries.lc.item(number)[0] + 1)
    if not numbers:
        raise ListEditError(f"{address.strip()} is not listed in {edit.label}")
    text = _splice(edit, lambda text, label: remove_entries(text, label, numbers))
    expected = [s for s in edit.current.subscribers if s.address.casefold() != wanted]
    _save(config, slug, edit, text, expected)
    return lines


@dataclass
class ImportReport:
    added: list[Subscriber] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # FILE.csv:LINE: reason

    def summary(self) -> str:
        return f"imported {len(self.added)}, rejected {len(self.rejected)}"


CSV_FIELDS = ("email", "name", "topics")


def import_csv(config: Config, store: Store, slug: str, csv_path: Path) -> ImportReport:
    """Append every good row of a CSV (header email,name,topics; topics split on ';' or ',')
    to the list's file; each bad row is reported as FILE.csv:LINE: reason. Suppressed
    addresses are rejected (resubscribe them one by one with `subscribers add`)."""
    label = display(csv_path)
    text = read_utf8(csv_path, label, ListEditError)
    edit = _open(config, slug)
    report = ImportReport()
    rows = list(_csv_rows(text, label))
    with store.connect() as conn:
        blocked = store_suppressions.of(conn, slug, (row[1] for row in rows if row[1]))
    seen: dict[str, int] = {}
    for line, email, name, topics in rows:
        where = f"{label}:{line}"
        if email is None:
            report.rejected.append(
                f"{where}: more cells than the header has; put a cell that holds commas "
                'in double quotes ("trafficking,turkiye")'
            )
            continue
        try:
            subscriber = make_subscriber(email, name, re.split(r"[;,]", topics))
        except ValueError as exc:
            report.rejected.append(f"{where}: {exc}")
            continue
        reason = _refusal(config, slug, edit, subscriber)
        first = seen.setdefault(subscriber.address.casefold(), line)
        if reason is None and first != line:
            reason = f"{subscriber.address} repeats line {first} of this file"
        row = blocked.get(suppression_key(subscriber.address))
        if reason is None and row is not None:
            reason = (
                f"{subscriber.address} is suppressed: {row.describe()}; "
                "use `syndicate subscribers add --resubscribe` if they asked to be added back"
            )
        if reason:
            report.rejected.append(f"{where}: {reason}")
        else:
            report.added.append(subscriber)
    if report.added:
        new = _splice(edit, lambda text, label: append(text, label, report.added))
        _save(config, slug, edit, new, [*edit.current.subscribers, *report.added])
    return report


def _csv_rows(text: str, label: str) -> Iterator[tuple[int, str | None, str, str]]:
    """(line, email, name, topics) of each non-empty row (email None: too many cells); a bad
    header is a mistake."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().casefold() for cell in next(reader, [])]
    if "email" not in header or any(h not in CSV_FIELDS for h in header):
        raise ListEditError(
            f"{label}:1: expected a header row of {','.join(CSV_FIELDS)} "
            f"(email required), got {','.join(header) or 'nothing'}"
        )
    columns = {name: header.index(name) for name in CSV_FIELDS if name in header}
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            index = columns.get(name)
            return row[index] if index is not None and index < len(row) else ""

        if len(row) > len(header):
            yield start, None, "", ""
            continue
        yield start, cell("email"), cell("name"), cell("topics")


def export_csv(subscribers: Iterable[Subscriber]) -> str:
    """The subscribers as CSV with the header import reads; topics joined by ';'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for s in subscribers:
        writer.writerow([s.address, s.name, ";".join(s.topics)])
    return out.getvalue()

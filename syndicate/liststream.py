"""A list file's subscribers, read fast and in constant memory for digests.

The careful reader (subscriptions.read_list_file) keeps every line number for its FILE:LINE
errors, and at 100,000 subscribers takes most of a minute and hundreds of megabytes. This one
walks libyaml's parse events and checks each entry as it comes, holding only the set of
addresses seen. It accepts exactly the plainly valid file; at the first thing it is unsure
of (an invalid or repeated entry, a tag, an alias, a scalar YAML would read as a number…) it
raises Unusual, and the careful reader decides, with line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from syndicate.addresses import plain_address
from syndicate.model import Subscriber
from syndicate.text import name_text

# Plain scalars that YAML reads as something other than text (null, booleans, numbers).
_NOT_TEXT = re.compile(
    r"~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|0x[0-9a-fA-F_]+|0o?[0-7_]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|[-+]?[0-9][0-9_:]*"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt \t].*)?"  # dates and timestamps
)


class Unusual(Exception):
    """The fast reader cannot vouch for the file: read it carefully instead."""


def subscribers(path: Path, allowed: frozenset[str]) -> Iterator[Subscriber]:
    """The subscribers of a list file in file order; Unusual (possibly after some were
    yielded, always in the same order as the careful reader's) when in any doubt."""
    with path.open("rb") as stream:
        head = stream.read(3)
        if head != b"\xef\xbb\xbf":
            stream.seek(0)
        events = yaml.parse(stream, Loader=yaml.CSafeLoader)
        try:
            yield from _entries(events, allowed)
        except yaml.YAMLError:
            raise Unusual from None


def _entries(events: Iterator[Event], allowed: frozenset[str]) -> Iterator[Subscriber]:
    seen: set[str] = set()
    expect(events, StreamStartEvent)
    first = next(events)
    if isinstance(first, StreamEndEvent):
        return  # an empty file: no subscribers
    if not isinstance(first, DocumentStartEvent):
        raise Unusual
    top = next(events)
    if isinstance(top, ScalarEvent) and top.value in ("", "~", "null") and not top.style:
        expect(events, DocumentEndEvent)  # "subscribers:" with nothing at all
        expect(events, StreamEndEvent)
        return
    if not isinstance(top, MappingStartEvent) or top.tag or top.anchor:
        raise Unusual
    key = text(next(events))
    if key != "subscribers":
        raise Unusual
    start = next(events)
    if isinstance(start, SequenceStartEvent) and not start.tag and not start.anchor:
        for item in _items(events):
            subscriber = _subscriber(item, events, allowed)
            address = subscriber.address.casefold()
            if address in seen:
                raise Unusual
            seen.add(address)
            yield subscriber
    else:
        raise Unusual  # anything but a list after `subscribers:`
    expect(events, MappingEndEvent)
    expect(events, DocumentEndEvent)
    expect(events, StreamEndEvent)


def _items(events: Iterator[Event]) -> Iterator[Event]:
    """The first event of each entry of a sequence, up to its end."""
    while True:
        event = next(events)
        if isinstance(event, SequenceEndEvent):
            return
        yield event


def _subscriber(first: Event, events: Iterator[Event], allowed: frozenset[str]) -> Subscriber:
    if isinstance(first, ScalarEvent):
        return Subscriber(_address(text(first)))
    if not isinstance(first, MappingStartEvent) or first.tag or first.anchor:
        raise Unusual
    fields: dict[str, Event] = {}
    topics: tuple[str, ...] = ()
    while True:
        event = next(events)
        if isinstance(event, MappingEndEvent):
            break
        name = text(event)
        if name in fields or name not in ("email", "name", "topics"):
            raise Unusual
        value = next(events)
        fields[name] = value
        if name == "topics":
            topics = _topics(value, events, allowed)
    if "email" not in fields:
        raise Unusual
    name_event = fields.get("name")
    name = "" if name_event is None else _optional_text(name_event)
    return Subscriber(_address(text(fields["email"])), name_text(name), topics)


def _topics(start: Event, events: Iterator[Event], allowed: frozenset[str]) -> tuple[str, ...]:
    if isinstance(start, ScalarEvent) and start.value in ("", "~", "null") and not start.style:
        return ()
    if not isinstance(start, SequenceStartEvent) or start.tag or start.anchor:
        raise Unusual
    topics = [text(event) for event in _items(events)]
    if any(topic not in allowed for topic in topics):
        raise Unusual
    return tuple(dict.fromkeys(topics))


def _optional_text(event: Event) -> str:
    if isinstance(event, ScalarEvent) and event.value in ("", "~", "null") and not event.style:
        return ""
    return text(event)


def _address(value: str) -> str:
    address = plain_address(value)
    if address is None:
        raise Unusual
    return address


def text(event: Event) -> str:
    """A scalar that YAML reads as text; Unusual for anything else."""
    if isinstance(event, AliasEvent) or not isinstance(event, ScalarEvent) or event.tag:
        raise Unusual
    if event.anchor or (not event.style and _NOT_TEXT.fullmatch(event.value)):
        raise Unusual
    return event.value


def expect(events: Iterator[Event], kind: type[Event]) -> None:
    if not isinstance(next(events), kind):
        raise Unusual

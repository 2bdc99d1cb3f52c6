"""Who is subscribed to what. For now: the admins' list files (config/lists/*.yaml), read
with FILE:LINE errors; self-service subscriptions and suppression join them later."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from syndicate.addresses import normalise_address
from syndicate.config import Config, MailingList
from syndicate.errors import ConfigError
from syndicate.files import display, read_utf8
from syndicate.model import Subscriber
from syndicate.text import one_line
from syndicate.yamlfile import parse_yaml

ENTRY_KEYS = ("email", "name", "topics")


@dataclass
class ListFile:
    """The subscribers read from one list file, and every problem found, as FILE:LINE lines."""

    subscribers: list[Subscriber] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def allowed_topics(config: Config, mailing_list: MailingList) -> list[str]:
    """The topics a subscriber of this list may narrow to."""
    return list(config.topics) if "all" in mailing_list.topics else list(mailing_list.topics)


def read_list_file(config: Config, slug: str) -> ListFile:
    """Every subscriber of list `slug` from its file; a missing `subscribers:` key is an
    empty list (self-service only)."""
    mailing_list = config.lists[slug]
    result = ListFile()
    path = mailing_list.subscribers
    if path is None:
        return result
    label = display(path)
    try:
        data = parse_yaml(read_utf8(path, label, ConfigError), label)
    except ConfigError as exc:
        result.problems.append(str(exc))
        return result
    entries = data.get("subscribers") if isinstance(data, CommentedMap) else None
    if data is None or (isinstance(data, CommentedMap) and "subscribers" not in data):
        return result
    if not isinstance(entries, CommentedSeq):
        line = data.lc.key("subscribers")[0] + 1 if isinstance(data, CommentedMap) else 1
        result.problems.append(f"{label}:{line}: subscribers: expected a list of addresses")
        return result
    unknown = [k for k in data if k != "subscribers"]
    for key in unknown:
        result.problems.append(
            f"{label}:{data.lc.key(key)[0] + 1}: {key}: unknown key "
            "(a list file holds only 'subscribers')"
        )
    seen: dict[str, int] = {}
    allowed = allowed_topics(config, mailing_list)
    for number, entry in enumerate(entries):
        line = entries.lc.item(number)[0] + 1
        where = f"{label}:{line}: subscribers[{number}]"
        try:
            subscriber = _subscriber(entry, allowed)
        except ValueError as exc:
            result.problems.append(f"{where}{exc}")
            continue
        first = seen.setdefault(subscriber.address.casefold(), line)
        if first != line:
            result.problems.append(
                f"{where}: {subscriber.address} is already listed on line {first}"
            )
            continue
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
    return Subscriber(address, one_line(name), tuple(dict.fromkeys(topics)))


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

"""The fast list reader agrees with the careful one: what it accepts, the careful reader
accepts alike, in the same order; and where it is unsure, it has given only a prefix."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate import liststream
from syndicate.config import Config
from syndicate.model import Subscriber
from syndicate.subscriptions import allowed_topics, parse_list_text
from tests.conftest import BASE_CONFIG, WriteConfig

ADDRESSES = st.sampled_from(
    [
        "desk@example.com",
        "Desk@Example.COM",
        "reporter@example.org",
        "'quoted@example.org'",
        '"double@example.org"',
        "müge@example.org",
        "not-an-address",
        "a@localhost",
        "a@x.test",
        "x@y..org",
        "123",
        "null",
        "",
    ]
)
NAMES = st.sampled_from(
    ["News desk", "'Quoted: name'", "yes", "no", "123", "2026-11-26", "~", '""', "[a]", "x # c"]
)
TOPICS = st.lists(
    st.sampled_from(["trafficking", "turkiye", "opinion", "nope", "'turkiye'", "1"]),
    max_size=3,
)


@st.composite
def entries(draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["bare", "flow", "block", "odd"]))
    address = draw(ADDRESSES)
    if style == "bare":
        return f"  - {address}"
    parts = [f"email: {address}"] if draw(st.booleans()) or address else []
    if draw(st.booleans()):
        parts.append(f"name: {draw(NAMES)}")
    if draw(st.booleans()):
        parts.append(f"topics: [{', '.join(draw(TOPICS))}]")
    if style == "odd":
        parts.append(draw(st.sampled_from(["extra: 1", "email: again@example.org", "<<: {}"])))
    if style == "flow" or not parts:
        return "  - {" + ", ".join(parts) + "}"
    return "  - " + "\n    ".join(parts)


@st.composite
def list_files(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["", "# admins' file\n", "---\n"]))
    lines = draw(st.lists(entries(), max_size=8))
    if not lines and draw(st.booleans()):
        body = draw(st.sampled_from(["subscribers:\n", "subscribers: []\n", "", "other: 1\n"]))
    else:
        body = "subscribers:\n" + "\n".join(lines) + "\n"
    tail = draw(st.sampled_from(["", "# end\n", "other: x\n", "---\nsubscribers: []\n"]))
    return head + body + tail


@pytest.fixture
def lists(write_config: WriteConfig) -> Config:
    return write_config(
        BASE_CONFIG + "lists:\n  weekly: {title: W, schedule: '0 8 * * mon', topics: [all]}\n"
    )


def fast(path: Path, config: Config) -> tuple[list[Subscriber], bool]:
    allowed = frozenset(allowed_topics(config, config.lists["weekly"]))
    out: list[Subscriber] = []
    try:
        for subscriber in liststream.subscribers(path, allowed):
            out.append(subscriber)
    except liststream.Unusual:
        return out, False
    return out, True


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=list_files(), bom=st.booleans())
def test_the_fast_reader_never_accepts_what_the_careful_one_refuses(
    lists: Config, tmp_path: Path, text: str, bom: bool
) -> None:
    path = tmp_path / "weekly.yaml"
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode())
    careful = parse_list_text(lists, "weekly", text, "weekly.yaml")
    given_, sure = fast(path, lists)
    if sure:
        assert careful.problems == []
        assert given_ == careful.subscribers
    elif not careful.problems:
        assert given_ == careful.subscribers[: len(given_)]


def test_a_plain_file_is_read_fast(lists: Config, tmp_path: Path) -> None:
    path = tmp_path / "weekly.yaml"
    path.write_text(
        "# comment\nsubscribers:\n  - Desk@Example.COM\n"
        '  - {email: r@example.org, name: " Reporter\\n  X ", topics: [opinion, opinion]}\n'
        "  - email: w@example.org\n    topics: []\n",
        encoding="utf-8",
    )
    assert fast(path, lists) == (
        [
            Subscriber("Desk@example.com"),
            Subscriber("r@example.org", "Reporter X", ("opinion",)),
            Subscriber("w@example.org"),
        ],
        True,
    )

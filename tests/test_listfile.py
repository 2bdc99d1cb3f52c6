"""Line edits of the admins' list files: every byte outside the edited entry stays."""

from __future__ import annotations

import pytest

from syndicate.listfile import LayoutError, append, remove, render, split_lines
from syndicate.model import Subscriber
from syndicate.yamlfile import parse_yaml

ADMIN_FILE = """\
# Weekly digest recipients: keep sorted by organisation
subscribers:
  # newspapers
  - email: desk@example.com
    name: News desk   # the night shift reads it
    topics: [trafficking, turkiye]
  -   reporter@example.org    # freelance, odd spacing kept

  # agencies
  - email: 'wire@agency.example'
    # they asked for every topic
    name: "Wire"
# end of file: nothing below
"""
NEW = Subscriber("new@example.net", "Ayşe: Desk", ("ankara", "opinion"))


def without(text: str, first: int, count: int) -> str:
    lines = split_lines(text)
    return "".join(lines[: first - 1] + lines[first - 1 + count :])


def test_append_adds_lines_after_the_last_entry_and_changes_nothing_else() -> None:
    after = append(ADMIN_FILE, "w.yaml", [NEW])
    assert without(after, 13, 3) == ADMIN_FILE
    assert split_lines(after)[12:15] == [
        "  - email: new@example.net\n",
        "    name: 'Ayşe: Desk'\n",
        "    topics: [ankara, opinion]\n",
    ]


def test_a_bare_address_is_added_as_a_bare_entry() -> None:
    after = append(ADMIN_FILE, "w.yaml", [Subscriber("solo@example.net")])
    assert split_lines(after)[12] == "  - solo@example.net\n"
    assert without(after, 13, 1) == ADMIN_FILE


def test_removing_an_entry_keeps_the_comments_around_it() -> None:
    assert remove(ADMIN_FILE, "w.yaml", [0]) == without(ADMIN_FILE, 4, 3)
    assert remove(ADMIN_FILE, "w.yaml", [1]) == without(ADMIN_FILE, 7, 1)
    # the comment inside the last entry goes with it; the comment after it stays
    assert remove(ADMIN_FILE, "w.yaml", [2]) == without(ADMIN_FILE, 10, 3)


def test_removing_the_last_entry_leaves_an_empty_list_not_null() -> None:
    text = "subscribers:  # who gets it\n  - a@example.org\n"
    after = remove(text, "w.yaml", [0])
    assert after == "subscribers: []  # who gets it\n"
    assert parse_yaml(after, "w.yaml")["subscribers"] == []


def test_an_empty_flow_list_becomes_a_block_and_keeps_its_comment() -> None:
    after = append("# top\nsubscribers: []  # none yet\n", "w.yaml", [Subscriber("a@example.org")])
    assert after == "# top\nsubscribers:  # none yet\n  - a@example.org\n"


def test_a_file_without_subscribers_gets_the_key_at_its_end() -> None:
    after = append("# only a comment", "w.yaml", [Subscriber("a@example.org")])
    assert after == "# only a comment\nsubscribers:\n  - a@example.org\n"


def test_the_admins_indentation_and_line_endings_are_followed() -> None:
    text = "subscribers:\r\n- a@example.org\r\n"
    after = append(text, "w.yaml", [Subscriber("b@example.org", "B")])
    assert after == text + "- email: b@example.org\r\n  name: B\r\n"


def test_a_file_without_a_final_newline_gets_one_before_the_new_entry() -> None:
    after = append("subscribers:\n  - a@example.org", "w.yaml", [Subscriber("b@example.org")])
    assert after == "subscribers:\n  - a@example.org\n  - b@example.org\n"


def test_a_one_line_list_with_entries_is_not_edited() -> None:
    with pytest.raises(LayoutError) as caught:
        append("subscribers: [a@example.org]\n", "w.yaml", [Subscriber("b@example.org")])
    assert caught.value.line == 1


@pytest.mark.parametrize(
    "name", ["O'Brien", 'Say "hi"', "#hash", "- dash", "yes", "null", "a: b", "Türkiye desk"]
)
def test_rendered_names_read_back_as_written(name: str) -> None:
    entry = Subscriber("a@example.org", name, ("x",))
    data = parse_yaml("subscribers:\n" + render(entry), "w.yaml")
    assert data["subscribers"][0]["name"] == name

"""Mailing lists in the config and the admins' subscriber files, with FILE:LINE errors."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from syndicate.config import IMMEDIATE, Config
from syndicate.errors import ConfigError
from syndicate.model import Subscriber
from syndicate.subscriptions import read_list_file
from tests.conftest import BASE_CONFIG, ROOT, WriteConfig

LISTS = """\
lists:
  weekly:
    title: Weekly digest
    schedule: "0 8 * * mon"
    timezone: Europe/Istanbul
    subscribers: lists/weekly.yaml
  alerts:
    title: Alerts
    schedule: immediate
    topics: [trafficking]
    subscribers: lists/alerts.yaml
"""


def list_file(project: Path, name: str, text: str) -> Path:
    path = project / "config" / "lists" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def lists_config(project: Path, write_config: WriteConfig) -> Config:
    list_file(project, "weekly.yaml", "subscribers: []\n")
    list_file(project, "alerts.yaml", "subscribers: []\n")
    return write_config(BASE_CONFIG + LISTS)


def test_lists_load_with_defaults(lists_config: Config) -> None:
    weekly, alerts = lists_config.lists["weekly"], lists_config.lists["alerts"]
    assert weekly.topics == ["all"] and weekly.template == "digest" and not weekly.send_empty
    assert weekly.misfire_grace == 6 * 3600
    assert alerts.schedule == IMMEDIATE and alerts.timezone is None


@pytest.mark.parametrize(("written", "seconds"), [("6h", 21600), ("15m", 900), ("90", 90)])
def test_misfire_grace_takes_durations(
    project: Path, write_config: WriteConfig, written: str, seconds: float
) -> None:
    list_file(project, "w.yaml", "subscribers: []\n")
    config = write_config(
        BASE_CONFIG + "lists:\n  w:\n    title: W\n    schedule: '0 8 * * *'\n"
        f"    subscribers: lists/w.yaml\n    misfire_grace: '{written}'\n"
    )
    assert config.lists["w"].misfire_grace == seconds


def error(write_config: WriteConfig, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        write_config(text)
    return str(caught.value)


def test_a_bad_cron_names_its_line(project: Path, write_config: WriteConfig) -> None:
    message = error(
        write_config, BASE_CONFIG + "lists:\n  w:\n    title: W\n    schedule: every monday\n"
    )
    assert message.startswith(
        f"{project}/config/syndicate.yaml:28: lists.w.schedule: "
        "'every monday' is not 'immediate' nor a cron expression"
    )


def test_an_unknown_list_time_zone_names_its_line(project: Path, write_config: WriteConfig) -> None:
    message = error(
        write_config,
        BASE_CONFIG + "lists:\n  w:\n    title: W\n"
        "    schedule: immediate\n    timezone: Mars/Olympus\n",
    )
    assert message == (
        f"{project}/config/syndicate.yaml:29: lists.w.timezone: unknown time "
        "zone 'Mars/Olympus'; use an IANA name such as 'Europe/Istanbul'"
    )


def test_an_unknown_list_topic_names_its_line(project: Path, write_config: WriteConfig) -> None:
    message = error(
        write_config,
        BASE_CONFIG + "lists:\n  w:\n    title: W\n"
        "    schedule: immediate\n    topics: [trafficking, syria]\n",
    )
    assert message == (
        f"{project}/config/syndicate.yaml:29: lists.w.topics[1]: unknown topic "
        "'syria'; known: all, trafficking, turkiye, ankara, opinion"
    )


def test_a_missing_subscriber_file_names_the_config_line(
    project: Path, write_config: WriteConfig
) -> None:
    message = error(
        write_config,
        BASE_CONFIG + "lists:\n  w:\n    title: W\n"
        "    schedule: immediate\n    subscribers: lists/nope.yaml\n",
    )
    assert message == (
        f"{project}/config/syndicate.yaml:29: lists.w.subscribers: file not "
        f"found: {project}/config/lists/nope.yaml"
    )


def test_a_broken_subject_template_is_an_error(project: Path, write_config: WriteConfig) -> None:
    message = error(
        write_config,
        BASE_CONFIG + "lists:\n  w:\n    title: W\n"
        "    schedule: immediate\n    subject: '{{ list.title'\n",
    )
    assert message.startswith(
        f"{project}/config/syndicate.yaml:29: lists.w.subject: not a valid template"
    )


def test_subscribers_are_read_normalised_and_narrowed(project: Path, lists_config: Config) -> None:
    list_file(
        project,
        "weekly.yaml",
        """\
        subscribers:
          - email: Desk@Example.COM
            name: "News   desk"
            topics: [trafficking, opinion]
          - reporter@example.org
        """,
    )
    result = read_list_file(lists_config, "weekly")
    assert result.problems == []
    assert result.subscribers == [
        Subscriber("Desk@example.com", "News desk", ("trafficking", "opinion")),
        Subscriber("reporter@example.org"),
    ]


def test_every_bad_entry_is_reported_with_its_line_and_the_rest_kept(
    project: Path, lists_config: Config
) -> None:
    path = list_file(
        project,
        "alerts.yaml",
        """\
        subscribers:
          - good@example.org
          - not an address
          - email: desk@example.com
            topics: [opinion]
          - {name: No Address}
          - email: x@example.org
            phone: 123
          - GOOD@example.org
        """,
    )
    result = read_list_file(lists_config, "alerts")
    assert result.subscribers == [Subscriber("good@example.org")]
    assert [p.split(": ", 2)[0:2] for p in result.problems] == [
        [f"{path}:3", "subscribers[1]"],
        [f"{path}:4", "subscribers[2].topics"],
        [f"{path}:6", "subscribers[3].email"],
        [f"{path}:7", "subscribers[4].phone"],
        [f"{path}:9", "subscribers[5]"],
    ]
    assert result.problems[1].endswith("'opinion' is not a topic of this list; known: trafficking")
    assert result.problems[4].endswith("GOOD@example.org is already listed on line 2")


def test_a_yaml_error_in_a_list_file_names_file_and_line(
    project: Path, lists_config: Config
) -> None:
    path = list_file(project, "weekly.yaml", "subscribers:\n  - a@example.org\n  - [oops\n")
    [problem] = read_list_file(lists_config, "weekly").problems
    assert problem.startswith(f"{path}:3: YAML syntax error")


def test_header_injection_in_an_address_is_refused(project: Path, lists_config: Config) -> None:
    list_file(project, "weekly.yaml", 'subscribers:\n  - "a@example.org\\r\\nBcc: e@evil.org"\n')
    [problem] = read_list_file(lists_config, "weekly").problems
    assert "control characters or line breaks" in problem


def test_check_reports_list_file_problems_and_exits_2(project: Path, lists_config: Config) -> None:
    list_file(project, "weekly.yaml", "subscribers:\n  - nobody\n")
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "check"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("config/lists/weekly.yaml:2: subscribers[0]: 'nobody' is not")


def test_the_sample_lists_are_valid() -> None:
    from syndicate.config import load_config

    config = load_config(ROOT / "config" / "syndicate.yaml", environ={})
    for slug in config.lists:
        assert read_list_file(config, slug).problems == []


def test_check_reports_a_list_template_that_does_not_exist(
    project: Path, lists_config: Config
) -> None:
    config = project / "config" / "syndicate.yaml"
    config.write_text(
        config.read_text().replace(
            "    subscribers: lists/alerts.yaml\n",
            "    subscribers: lists/alerts.yaml\n    template: monthly\n",
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "check"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()  # one problem, one FILE:LINE: field: message line
    assert re.match(
        r"config/syndicate\.yaml:\d+: lists\.alerts\.template: "
        r"no monthly\.html\.j2 nor monthly\.txt\.j2 in ",
        line,
    )

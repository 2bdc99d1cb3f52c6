"""`syndicate subscribers …`, run as an admin runs it: a subprocess, real files, real SQLite."""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path

import pytest

from syndicate.config import Config
from syndicate.store import Store
from syndicate.store import subscriptions as store_subscriptions
from syndicate.store import suppressions as store_suppressions
from syndicate.store.suppressions import EVERY_LIST, Reason
from tests.conftest import BASE_CONFIG, NOW, WriteConfig, run_syndicate

LISTS = """\
lists:
  weekly:
    title: Weekly digest
    schedule: "0 8 * * mon"
    subscribers: lists/weekly.yaml
  alerts:
    title: Alerts
    schedule: immediate
    topics: [trafficking]
    subscribers: lists/alerts.yaml
  open:
    title: Self-service only
    schedule: immediate
"""
WEEKLY = """\
# Weekly digest recipients: keep sorted by organisation
subscribers:
  # newspapers
  - email: desk@example.com
    name: News desk   # the night shift reads it
    topics: [trafficking, turkiye]
  - reporter@example.org    # freelance

  # agencies
  - email: 'wire@agency.example'
# end of file
"""


@pytest.fixture
def lists(project: Path, write_config: WriteConfig) -> Config:
    folder = project / "config" / "lists"
    folder.mkdir()
    (folder / "weekly.yaml").write_text(WEEKLY, encoding="utf-8")
    (folder / "alerts.yaml").write_text("subscribers: []  # none yet\n", encoding="utf-8")
    return write_config(BASE_CONFIG + LISTS)


def weekly(project: Path) -> str:
    return (project / "config" / "lists" / "weekly.yaml").read_text(encoding="utf-8")


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_syndicate(project, "subscribers", *args)


def suppress(config: Config, address: str, slug: str, reason: Reason) -> None:
    with Store.open(config.database.url) as store, store.begin() as conn:
        store_suppressions.suppress(conn, address, slug, reason, "test", NOW)


def suppressed(config: Config, address: str) -> set[str]:
    with Store.open(config.database.url) as store, store.connect() as conn:
        return store_suppressions.among(conn, "weekly", [address])


def test_add_appends_the_entry_and_keeps_every_other_byte(project: Path, lists: Config) -> None:
    result = run(
        project,
        "add",
        "weekly",
        " New@Example.NET ",
        "--name",
        "Ayşe",
        "--topics",
        "ankara,opinion",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "added New@example.net to config/lists/weekly.yaml\n"
    lines = weekly(project).splitlines(keepends=True)
    assert lines[10:13] == [
        "  - email: New@example.net\n",
        "    name: Ayşe\n",
        "    topics: [ankara, opinion]\n",
    ]
    assert "".join(lines[:10] + lines[13:]) == WEEKLY


def test_remove_deletes_only_the_entry(project: Path, lists: Config) -> None:
    result = run(project, "remove", "weekly", "DESK@example.COM")
    assert result.returncode == 0, result.stderr
    assert "line 4" in result.stdout
    lines = WEEKLY.splitlines(keepends=True)
    assert weekly(project) == "".join(lines[:3] + lines[6:])


def test_add_to_an_empty_list_then_remove_restores_it(project: Path, lists: Config) -> None:
    path = project / "config" / "lists" / "alerts.yaml"
    assert run(project, "add", "alerts", "a@example.org").returncode == 0
    assert path.read_text() == "subscribers:  # none yet\n  - a@example.org\n"
    assert run(project, "remove", "alerts", "a@example.org").returncode == 0
    assert path.read_text() == "subscribers: []  # none yet\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("add", "weekly", "Reporter@EXAMPLE.org"),
            "is already listed in config/lists/weekly.yaml:7",
        ),
        (("add", "weekly", "nobody"), "'nobody' is not a valid email address"),
        (("add", "weekly", "a@example.org\r\nBcc: e@evil.org"), "control characters"),
        (("add", "alerts", "a@example.org", "--topics", "turkiye"), "'turkiye' is not a topic"),
        (("add", "nowhere", "a@example.org"), "unknown list 'nowhere'"),
        (("add", "open", "a@example.org"), "set lists.open.subscribers in config/syndicate.yaml"),
        (("remove", "weekly", "stranger@example.org"), "is not listed in config/lists/weekly"),
        (("remove", "open", "a@example.org"), "set lists.open.subscribers"),
        (("list", "nowhere"), "unknown list 'nowhere'"),
    ],
)
def test_refusals_exit_2_with_one_reason_and_write_nothing(
    project: Path, lists: Config, args: tuple[str, ...], message: str
) -> None:
    result = run(project, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert weekly(project) == WEEKLY


def test_an_edit_that_leaves_the_file_invalid_writes_nothing(project: Path, lists: Config) -> None:
    broken = WEEKLY + "  - typo-address\n"
    path = project / "config" / "lists" / "weekly.yaml"
    path.write_text(broken, encoding="utf-8")
    result = run(project, "add", "weekly", "new@example.org")
    assert result.returncode == 2
    assert "config/lists/weekly.yaml:12: subscribers[3]: 'typo-address'" in result.stderr
    assert path.read_bytes() == broken.encode()


def test_adding_a_suppressed_address_is_refused(project: Path, lists: Config) -> None:
    suppress(lists, "Gone@example.org", "weekly", Reason.UNSUBSCRIBED)
    result = run(project, "add", "weekly", "gone@example.org")
    assert result.returncode == 2
    assert "suppressed: unsubscribed from list 'weekly'" in result.stderr
    assert "--resubscribe" in result.stderr
    assert weekly(project) == WEEKLY


def test_resubscribe_lifts_the_lists_suppression_and_says_who_and_when(
    project: Path, lists: Config
) -> None:
    suppress(lists, "gone@example.org", "weekly", Reason.BOUNCED)
    result = run(project, "add", "weekly", "gone@example.org", "--resubscribe")
    assert result.returncode == 0, result.stderr
    assert "resubscribed gone@example.org to weekly by " in result.stdout
    assert "lifted: bounced from list 'weekly'" in result.stdout
    assert weekly(project) == WEEKLY.replace("# end", "  - gone@example.org\n# end")
    assert suppressed(lists, "gone@example.org") == set()


def test_resubscribe_does_not_lift_a_suppression_from_every_list(
    project: Path, lists: Config
) -> None:
    suppress(lists, "left@example.org", EVERY_LIST, Reason.UNSUBSCRIBED)
    result = run(project, "add", "weekly", "left@example.org", "--resubscribe")
    assert result.returncode == 2
    assert "unsubscribed from every list" in result.stderr
    assert weekly(project) == WEEKLY
    assert suppressed(lists, "left@example.org") == {"left@example.org"}


def test_resubscribe_keeps_the_suppression_when_the_edit_is_refused(
    project: Path, lists: Config
) -> None:
    suppress(lists, "gone@example.org", "weekly", Reason.UNSUBSCRIBED)
    path = project / "config" / "lists" / "weekly.yaml"
    path.write_text(WEEKLY + "  - typo-address\n", encoding="utf-8")
    assert run(project, "add", "weekly", "gone@example.org", "--resubscribe").returncode == 2
    assert suppressed(lists, "gone@example.org") == {"gone@example.org"}


def test_list_shows_source_status_and_topics(project: Path, lists: Config) -> None:
    suppress(lists, "reporter@example.org", "weekly", Reason.UNSUBSCRIBED)
    suppress(lists, "wire@agency.example", EVERY_LIST, Reason.BOUNCED)
    suppress(lists, "desk@example.com", "alerts", Reason.UNSUBSCRIBED)  # another list
    result = run(project, "list", "weekly", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "email": "desk@example.com",
            "name": "News desk",
            "topics": ["trafficking", "turkiye"],
            "source": "config",
            "status": "active",
        },
        {
            "email": "reporter@example.org",
            "name": "",
            "topics": [],
            "source": "config",
            "status": "unsubscribed",
        },
        {
            "email": "wire@agency.example",
            "name": "",
            "topics": [],
            "source": "config",
            "status": "bounced",
        },
    ]
    text = run(project, "list", "weekly").stdout.splitlines()
    desk = ["desk@example.com", "active", "config", "trafficking,", "turkiye", "News", "desk"]
    assert text[0].split() == desk
    assert text[1].split() == ["reporter@example.org", "unsubscribed", "config", "all", "topics"]


def test_export_prints_addresses_or_csv(project: Path, lists: Config) -> None:
    plain = run(project, "export", "weekly")
    assert plain.stdout == "desk@example.com\nreporter@example.org\nwire@agency.example\n"
    table = run(project, "export", "weekly", "--csv")
    assert table.stdout == (
        "email,name,topics\n"
        "desk@example.com,News desk,trafficking;turkiye\n"
        "reporter@example.org,,\n"
        "wire@agency.example,,\n"
    )


CSV = """\
email,name,topics
ok1@example.com,One,trafficking
bad-address,Two,
ok2@example.com,"Two, Jr","trafficking,turkiye"
desk@example.com,,
ok3@example.com,,nope
OK1@example.com,,
gone@example.org,,

ok4@example.com,Four,ankara;opinion
ok5@example.com,,ankara,opinion
"""


def test_import_reports_each_bad_row_and_imports_the_rest(project: Path, lists: Config) -> None:
    suppress(lists, "gone@example.org", "weekly", Reason.UNSUBSCRIBED)
    (project / "in.csv").write_text(CSV, encoding="utf-8")
    result = run(project, "import", "weekly", "in.csv")
    assert result.returncode == 1
    rejected = result.stderr.splitlines()
    assert [line.split(":")[1] for line in rejected] == ["3", "5", "6", "7", "8", "11"]
    assert rejected[0].startswith("in.csv:3: 'bad-address' is not a valid email address")
    assert (
        rejected[1] == "in.csv:5: desk@example.com is already listed in config/lists/weekly.yaml:4"
    )
    assert "'nope' is not a topic" in rejected[2]
    assert rejected[3] == "in.csv:7: OK1@example.com repeats line 2 of this file"
    assert "suppressed: unsubscribed" in rejected[4]
    assert "more cells than the header" in rejected[5]
    assert result.stdout == "config/lists/weekly.yaml: imported 3, rejected 6\n"
    added = (
        "  - email: ok1@example.com\n    name: One\n    topics: [trafficking]\n"
        "  - email: ok2@example.com\n    name: Two, Jr\n    topics: [trafficking, turkiye]\n"
        "  - email: ok4@example.com\n    name: Four\n    topics: [ankara, opinion]\n"
    )
    assert weekly(project) == WEEKLY.replace("# end of file\n", added + "# end of file\n")
    exported = run(project, "export", "weekly").stdout.splitlines()
    assert exported[-3:] == ["ok1@example.com", "ok2@example.com", "ok4@example.com"]


def test_import_with_a_bad_header_writes_nothing(project: Path, lists: Config) -> None:
    (project / "in.csv").write_text("mail,name\nok@example.com,One\n", encoding="utf-8")
    result = run(project, "import", "weekly", "in.csv")
    assert result.returncode == 2
    assert "in.csv:1: expected a header row of email,name,topics" in result.stderr
    assert weekly(project) == WEEKLY


def test_an_exported_csv_imports_into_another_list(project: Path, lists: Config) -> None:
    (project / "out.csv").write_text(run(project, "export", "weekly", "--csv").stdout)
    result = run(project, "import", "alerts", "out.csv")
    # desk@ asks for 'turkiye', which the alerts list does not have
    assert result.returncode == 1
    assert result.stderr.startswith("out.csv:2: 'turkiye' is not a topic of list 'alerts'")
    assert run(project, "export", "alerts").stdout == "reporter@example.org\nwire@agency.example\n"


def test_list_shows_self_service_subscribers_and_their_own_topic_choices(
    project: Path, lists: Config
) -> None:
    with Store.open(lists.database.url) as store, store.begin() as conn:
        store_subscriptions.request(conn, "weekly", "new@example.net", ["turkiye"], NOW)
        store_subscriptions.request(conn, "weekly", "Sure@example.net", [], NOW)
        store_subscriptions.activate(conn, "weekly", "sure@example.net", NOW)
        store_subscriptions.choose_topics(conn, "weekly", "reporter@example.org", ["opinion"], NOW)
    result = run(project, "list", "weekly", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["email"]: row for row in json.loads(result.stdout)}
    assert rows["new@example.net"] == {
        "email": "new@example.net",
        "name": "",
        "topics": ["turkiye"],
        "source": "self-service",
        "status": "pending",
    }
    assert (rows["Sure@example.net"]["source"], rows["Sure@example.net"]["status"]) == (
        "self-service",
        "active",
    )
    assert rows["reporter@example.org"]["topics"] == ["opinion"]
    assert rows["reporter@example.org"]["source"] == "config"
    text = run(project, "list", "weekly").stdout
    assert "new@example.net" in text and "pending" in text


def test_a_resubscription_is_recorded_in_the_store(project: Path, lists: Config) -> None:
    suppress(lists, "gone@example.org", "weekly", Reason.UNSUBSCRIBED)
    assert run(project, "add", "weekly", "gone@example.org", "--resubscribe").returncode == 0
    with Store.open(lists.database.url) as store, store.connect() as conn:
        [record] = store_subscriptions.history(conn, "gone@example.org")
    assert record.list_slug == "weekly"
    assert record.by == getpass.getuser()
    assert (record.lifted.reason, record.lifted.source) == ("unsubscribed", "test")
    assert record.lifted.created_at == NOW


def test_check_warns_of_listed_addresses_that_get_no_mail(project: Path, lists: Config) -> None:
    suppress(lists, "reporter@example.org", "weekly", Reason.UNSUBSCRIBED)
    suppress(lists, "wire@agency.example", EVERY_LIST, Reason.BOUNCED)
    result = run_syndicate(project, "check")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "gets no mail" in line]
    assert warnings == [
        "warning: config/lists/weekly.yaml:7: reporter@example.org gets no mail: unsubscribed "
        "from list 'weekly' on 2026-11-26 09:00 UTC (source: test)",
        "warning: config/lists/weekly.yaml:10: wire@agency.example gets no mail: bounced from "
        "every list on 2026-11-26 09:00 UTC (source: test)",
    ]


def test_resubscribe_after_a_bounce_from_every_list_brings_back_only_this_list(
    project: Path, lists: Config
) -> None:
    suppress(lists, "fixed@example.org", EVERY_LIST, Reason.BOUNCED)
    assert run(project, "add", "weekly", "fixed@example.org").returncode == 2
    result = run(project, "add", "weekly", "fixed@example.org", "--resubscribe")
    assert result.returncode == 0, result.stderr
    assert "lifted: bounced from every list" in result.stdout
    assert suppressed(lists, "fixed@example.org") == set()
    with Store.open(lists.database.url) as store, store.connect() as conn:
        assert store_suppressions.among(conn, "alerts", ["fixed@example.org"]) == {
            "fixed@example.org"
        }

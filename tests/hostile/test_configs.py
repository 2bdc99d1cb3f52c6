"""A corpus of broken configurations, each checked as `syndicate check` checks it: exit code 2
and one `FILE:LINE: field: message` line per problem, naming the field and a line of a file
that exists; never a traceback.

Most cases run in this process through the CLI's own entry point (`syndicate.cli.main`, as
`python -m syndicate` calls it); a few of every kind also run as a real subprocess, which
costs about a second each. Adding a case is one line in CASES."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from syndicate.cli import main
from tests.conftest import outside_environ
from tests.figures import report

pytestmark = pytest.mark.hostile

BASE_URL = "https://press.example.org/news"
# FILE:LINE: field: message, where the field is a dotted path, or what the problem is about
# ('YAML syntax error', 'encoding', '(top level)'); no control character anywhere.
LINE = re.compile(
    r"^(?P<file>[^\s:][^:\x00-\x1f]*):(?P<line>[1-9][0-9]*): "
    r"(?P<field>[^:\s][^:\x00-\x1f]*?): (?P<message>[^\x00-\x1f\x7f]+)$"
)


def site(**values: str | None) -> str:
    """A `site:` section; keyword values are written as given (YAML), None drops a key."""
    fields = {"title": "Press Office", "base_url": BASE_URL, **values}
    return "site:\n" + "".join(f"  {k}: {v}\n" for k, v in fields.items() if v is not None)


SITE = site()


def weekly(**values: str | None) -> str:
    """A valid site and a `lists.weekly` section with these keys changed."""
    fields = {"title": "Weekly", "schedule": '"0 8 * * mon"', **values}
    listed = "".join(f"    {k}: {v}\n" for k, v in fields.items() if v is not None)
    return SITE + "lists:\n  weekly:\n" + listed


def bomb(levels: int = 9) -> str:
    """A YAML 'billion laughs': aliases nine deep, 9**9 strings if anything expanded them."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    """A config file (text, or bytes written as they are), the field its first error line
    must name, and how many error lines it must give. `files` are made beside it, relative to
    config/: text, bytes, None for a folder, or ('->', target) for a symlink."""

    name: str
    config: str | bytes
    field: str
    count: int = 1
    files: dict[str, str | bytes | tuple[str, str] | None] = dataclasses.field(default_factory=dict)


LIST_OK = {"lists/w.yaml": "subscribers:\n  - desk@example.com\n"}
WITH_LIST = weekly(subscribers="lists/w.yaml")
SSTI = "\"{{ ''.__class__.__mro__[1].__subclasses__() }}\""

CASES = [
    # --- wrong types and values ---
    Case("title is a number", site(title="42"), "site.title"),
    Case("title is blank", site(title='"  "'), "site.title"),
    Case("title holds an end tag", site(title='"Press </b> Office"'), "site.title"),
    Case("title holds an escape", site(title='"Press \\e[31m Office"'), "site.title"),
    Case("base URL runs a script", site(base_url='"javascript:alert(1)"'), "site.base_url"),
    Case("base URL has a space", site(base_url='"https://press example.org/"'), "site.base_url"),
    Case("base URL has a query", site(base_url=f'"{BASE_URL}?page=1#top"'), "site.base_url"),
    Case(
        "base URL has a bad port",
        site(base_url='"https://press.example.org:99999/"'),
        "site.base_url",
    ),
    Case("language tag", site(language="en_US"), "site.language"),
    Case("unknown zone", site(timezone="Mars/Olympus"), "site.timezone"),
    Case("zone is a path", site(timezone='"../../../etc/passwd"'), "site.timezone"),
    Case("zone is empty", site(timezone='""'), "site.timezone"),
    Case("port is a word", SITE + "web: {port: eighty}\n", "web.port"),
    Case("port is huge", SITE + "web: {port: 99999999999999999999999999999}\n", "web.port"),
    Case("max age is huge", SITE + "web: {max_age: 1e400}\n", "web.max_age"),
    Case("limit is zero", SITE + "feeds: {limit: 0}\n", "feeds.limit"),
    Case("archive size is infinite", SITE + "feeds: {archive_size: .inf}\n", "feeds.archive_size"),
    Case("negative timeout", SITE + "smtp: {timeout: -5}\n", "smtp.timeout"),
    Case("negative poll", SITE + "sources_poll: -1h\n", "sources_poll"),
    Case("infinite poll", SITE + "sources_poll: .inf\n", "sources_poll"),
    Case("huge poll", SITE + "sources_poll: 1e308\n", "sources_poll"),
    Case("poll is not a number", SITE + "sources_poll: .nan\n", "sources_poll"),
    Case("infinite retry", SITE + "smtp: {retry_for: .inf}\n", "smtp.retry_for"),
    Case("rate is not a number", SITE + "smtp: {rate_limit: .nan}\n", "smtp.rate_limit"),
    Case("bounce limit zero", SITE + "mail: {bounce_limit: 0}\n", "mail.bounce_limit"),
    Case("security mode", SITE + "smtp: {security: ssl}\n", "smtp.security"),
    Case("password in the file", SITE + "smtp: {password: hunter2}\n", "smtp.password"),
    Case("database URL", SITE + "database: {url: not a url}\n", "database.url"),
    Case("negative grace", weekly(misfire_grace="-1h"), "lists.weekly.misfire_grace"),
    Case("list title escape", weekly(title='"W\\x1b]0;pwned\\x07"'), "lists.weekly.title"),
    # --- unknown keys ---
    Case("unknown section", SITE + "sitee: {}\n", "sitee"),
    Case("misspelt key", site(title=None, titel="T"), "site.titel"),
    Case("misspelt list key", weekly(schedule=None, shedule='"0 8 * * *"'), "lists.weekly.shedule"),
    Case(
        "topic key",
        SITE + "topics:\n  data:\n    title: D\n    keyword: [x]\n",
        "topics.data.keyword",
    ),
    Case("key with a line break", SITE + '"bad\\nkey\\rx": 1\n', "'bad\\nkey\\rx'"),
    # --- schedules and zones ---
    Case("cron minute 61", weekly(schedule='"61 * * * *"'), "lists.weekly.schedule"),
    Case("cron too short", weekly(schedule='"* * *"'), "lists.weekly.schedule"),
    Case("cron in words", weekly(schedule='"every monday"'), "lists.weekly.schedule"),
    Case("cron empty", weekly(schedule='""'), "lists.weekly.schedule"),
    Case("cron weekday", weekly(schedule='"0 8 * * funday"'), "lists.weekly.schedule"),
    Case("list zone", weekly(timezone="Europe/Nowhere"), "lists.weekly.timezone"),
    # --- addresses ---
    Case("from is no address", SITE + 'mail: {from: "not an address"}\n', "mail.from"),
    Case("from lacks a domain", SITE + 'mail: {from: "Press <press@>"}\n', "mail.from"),
    Case(
        "from with a header",
        SITE + 'mail: {from: "P\\r\\nBcc: e@example.org <p@example.org>"}\n',
        "mail.from",
    ),
    Case(
        "from is two addresses",
        SITE + 'mail: {from: "P <p@example.org>, e@example.org"}\n',
        "mail.from",
    ),
    Case("from is a number", SITE + "mail: {from: 42}\n", "mail.from"),
    Case("reply-to two ats", SITE + 'mail: {reply_to: "a@b@example.org"}\n', "mail.reply_to"),
    # --- YAML syntax ---
    Case("unclosed quote", site(title='"Unclosed'), "YAML syntax error"),
    Case("unclosed bracket", SITE + "topics: [a, b\n", "YAML syntax error"),
    Case(
        "bad indentation", "site:\n  title: T\n base_url: https://x.example\n", "YAML syntax error"
    ),
    Case("tab indentation", "site:\n\ttitle: T\n", "YAML syntax error"),
    Case(
        "duplicate key", SITE + "topics:\n  a: {title: A}\n  a: {title: B}\n", "YAML syntax error"
    ),
    Case("duplicate section", SITE + SITE, "YAML syntax error"),
    Case("two documents", SITE + "---\nsite: {}\n", "YAML syntax error"),
    Case("undefined alias", "site: *nowhere\n", "YAML syntax error"),
    Case("python tag", "site: !!python/object/apply:os.system [id]\n", "site"),  # never run
    Case("bad binary", SITE + "topics: !!binary '%%%'\n", "topics"),
    Case("deep nesting", SITE + "topics: " + "[" * 5000 + "]" * 5000 + "\n", "YAML syntax error"),
    Case(
        "alias bomb in a section",
        bomb() + SITE.replace("site:\n", "site:\n  x: *l8\n"),
        "YAML syntax error",
    ),
    Case("alias bomb as a value", bomb() + SITE + "topics: *l8\n", "YAML syntax error"),
    Case("complex key", SITE + "? [a, b]\n: c\n", "('a', 'b')"),
    Case("top level is a list", "- site\n- topics\n", "(top level)"),
    Case("top level is a word", "just words\n", "(top level)"),
    Case("empty file", "", "site"),
    # --- encodings ---
    Case("UTF-16 with BOM", SITE.encode("utf-16"), "encoding"),
    Case("UTF-16 without BOM", SITE.encode("utf-16-be"), "encoding"),
    Case("UTF-32", SITE.encode("utf-32"), "encoding"),
    Case("Latin-1", site(title="Café").encode("latin-1"), "encoding"),
    Case("BOM and garbage", b"\xef\xbb\xbf\xff\xfe\x00garbage\x80\n", "encoding"),
    Case("NUL inside", SITE.encode() + b"x: a\x00b\n", "encoding"),
    Case("overlong UTF-8", SITE.encode() + b"x: \xc0\xaf\n", "encoding"),
    Case("UTF-8 surrogate", SITE.encode() + b"x: \xed\xa0\x80\n", "encoding"),
    # --- list files ---
    Case("list file missing", weekly(subscribers="lists/none.yaml"), "lists.weekly.subscribers"),
    Case(
        "list file is a folder",
        weekly(subscribers="lists/dir"),
        "lists.weekly.subscribers",
        files={"lists/dir": None},
    ),
    Case(
        "list files in a loop",
        weekly(subscribers="lists/a.yaml"),
        "lists.weekly.subscribers",
        files={"lists/a.yaml": ("->", "b.yaml"), "lists/b.yaml": ("->", "a.yaml")},
    ),
    Case("list file is a device", weekly(subscribers="/dev/null"), "lists.weekly.subscribers"),
    Case(
        "list file is the config", weekly(subscribers="syndicate.yaml"), "lists.weekly.subscribers"
    ),
    Case(
        "list file Latin-1",
        WITH_LIST,
        "encoding",
        files={"lists/w.yaml": "subscribers: [café@example.com]\n".encode("latin-1")},
    ),
    Case(
        "list file syntax",
        WITH_LIST,
        "YAML syntax error",
        files={"lists/w.yaml": "subscribers: [a@example.com\n"},
    ),
    Case(
        "list file address",
        WITH_LIST,
        "subscribers[0]",
        files={"lists/w.yaml": "subscribers:\n  - not-an-address\n"},
    ),
    Case(
        "list file header",
        WITH_LIST,
        "subscribers[0]",
        files={"lists/w.yaml": 'subscribers:\n  - "a@example.com\\r\\nBcc: b@example.com"\n'},
    ),
    Case(
        "list file duplicate",
        WITH_LIST,
        "subscribers[1]",
        files={"lists/w.yaml": "subscribers:\n  - a@example.com\n  - A@EXAMPLE.COM\n"},
    ),
    Case(
        "list file duplicate on one line",
        WITH_LIST,
        "subscribers[1]",
        files={"lists/w.yaml": "subscribers: [a@example.com, A@EXAMPLE.COM]\n"},
    ),
    Case(
        "list file of other keys", WITH_LIST, "site", files={"lists/w.yaml": "site: {title: T}\n"}
    ),
    Case(
        "list file alias bomb",
        WITH_LIST,
        "YAML syntax error",
        files={"lists/w.yaml": bomb() + "subscribers: *l8\n"},
    ),
    Case(
        "list file name bomb",
        WITH_LIST,
        "YAML syntax error",
        files={"lists/w.yaml": bomb() + "subscribers:\n  - {email: a@example.com, name: *l8}\n"},
    ),
    Case("list topic", weekly(topics="[nosuch]"), "lists.weekly.topics[0]"),
    Case("list template path", weekly(template='"../../etc/passwd"'), "lists.weekly.template"),
    Case("list template missing", weekly(template="nosuch"), "lists.weekly.template"),
    Case("subject syntax", weekly(subject='"{{ unclosed"'), "lists.weekly.subject"),
    Case("subject filter", weekly(subject='"{{ releases|nosuchfilter }}"'), "lists.weekly.subject"),
    Case("subject escapes the sandbox", weekly(subject=SSTI), "lists.weekly.subject"),
    Case(
        "list slug",
        SITE + "lists:\n  Weekly List: {title: W, schedule: immediate}\n",
        "lists.Weekly List",
    ),
    # --- topics and sources ---
    Case(
        "keywords a string",
        SITE + "topics:\n  data: {title: D, keywords: data}\n",
        "topics.data.keywords",
    ),
    Case(
        "unknown kind",
        SITE + "topics:\n  data: {title: D, kinds: [blog]}\n",
        "topics.data.kinds[0]",
    ),
    Case("sources not a list", SITE + "sources: content\n", "sources"),
    Case("source type", SITE + "sources: [{type: rss, url: x}]\n", "sources[0]"),
    Case(
        "source selector",
        SITE + "sources: [{type: html, path: l.html, item: 'li['}]\n",
        "sources[0].item",
        files={"l.html": "<ul></ul>"},
    ),
    Case(
        "source folder missing",
        SITE + "sources: [{type: markdown, path: nowhere}]\n",
        "sources[0].path",
    ),
    Case(
        "source is a folder",
        SITE + "sources: [{type: json, path: lists}]\n",
        "sources[0].path",
        files={"lists/x": ""},
    ),
]

# Bugs in files this suite may not change (syndicate/subscriptions.py reads list files):
# these cases are expected to fail until they are fixed there (xfail, strict).

# A few of every kind also go through a real `python -m syndicate` process.
SUBPROCESS = {"UTF-16 with BOM", "deep nesting", "alias bomb as a value", "list files in a loop"}


def make(project: Path, case: Case) -> Path:
    """The case's files in the project; the config's path."""
    folder = project / "config"
    (folder / "lists").mkdir(exist_ok=True)
    for name, content in {**LIST_OK, **case.files}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, tuple):
            path.symlink_to(content[1])
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    config = folder / "syndicate.yaml"
    data = case.config
    config.write_bytes(data if isinstance(data, bytes) else textwrap.dedent(data).encode())
    return config


@dataclass
class Outcome:
    code: int | str | None
    stdout: str
    stderr: str


def in_process(project: Path, capsys: pytest.CaptureFixture[str]) -> Outcome:
    """`syndicate check` through the CLI's entry point, as an admin runs it in the project."""
    capsys.readouterr()
    try:
        main(["check"])
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def problems_with(case: Case, outcome: Outcome, project: Path) -> list[str]:
    """How the outcome falls short: exit code, format of each line, field, files and lines."""
    problems = []
    if outcome.code != 2:
        problems.append(f"exit code {outcome.code!r}, not 2")
    if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
        problems.append("a traceback")
    lines = outcome.stderr.splitlines()
    if len(lines) != case.count:
        problems.append(f"{len(lines)} lines on stderr, expected {case.count}")
    for number, text in enumerate(lines):
        found = LINE.match(text)
        if found is None:
            problems.append(f"not FILE:LINE: field: message: {text!r}")
            continue
        path = (project / found["file"]).resolve()
        config = project / "config"
        if not (path.is_relative_to(config.resolve()) or path == Path("/dev/null")):
            problems.append(f"names a file outside the config folder: {text!r}")
        elif path.is_file():
            length = len(path.read_bytes().splitlines()) or 1
            if int(found["line"]) > length:
                problems.append(f"line {found['line']} is past the end of {path.name}: {text!r}")
        if number == 0 and found["field"] != case.field:
            problems.append(f"names {found['field']!r}, not {case.field!r}: {text!r}")
    return problems


@pytest.fixture
def in_project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run where an admin would, with no SYNDICATE_* settings from this process."""
    monkeypatch.chdir(project)
    for name in [n for n in os.environ if n.startswith("SYNDICATE_")]:
        monkeypatch.delenv(name)
    return project


def test_the_corpus_is_large_and_its_names_are_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.name for c in CASES} >= SUBPROCESS


def test_every_broken_config_exits_2_with_one_file_line_field_message_per_problem(
    in_project: Path, capsys: pytest.CaptureFixture[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    failures: dict[str, list[str]] = {}
    checked = CASES
    for case in checked:
        project = tmp_path_factory.mktemp("case")
        (project / "config").mkdir()
        make(project, case)
        os.chdir(project)
        outcome = in_process(project, capsys)
        found = problems_with(case, outcome, project)
        if found:
            failures[case.name] = [*found, f"stderr: {outcome.stderr!r}"]
    assert failures == {}, "\n".join(f"{k}: {v}" for k, v in failures.items())
    report(
        "hostile-config",
        f"{len(checked)} broken configs through the CLI: {len(checked)} exit 2 with one "
        "FILE:LINE: field: message per problem, 0 crashes",
    )


def test_a_few_of_them_behave_the_same_in_a_real_process(
    in_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    chosen = [c for c in CASES if c.name in SUBPROCESS]
    started = []
    for case in chosen:
        project = tmp_path_factory.mktemp("proc")
        (project / "config").mkdir()
        make(project, case)
        started.append((case, project, _start(project)))
    failures = {}
    for case, project, process in started:
        out, err = process.communicate(timeout=60)
        found = problems_with(case, Outcome(process.returncode, out, err), project)
        if found:
            failures[case.name] = [*found, f"stderr: {err!r}"]
    assert failures == {}
    report("hostile-config", f"{len(chosen)} of them as `syndicate check` processes: same result")


def _start(project: Path) -> subprocess.Popen[str]:
    """What tests.conftest.run_syndicate(project, "check") runs, started without waiting for
    it, so that the processes run side by side."""
    return subprocess.Popen(
        [sys.executable, "-m", "syndicate", "check"],
        cwd=project,
        env=outside_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

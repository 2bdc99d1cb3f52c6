"""Shared fixtures: a project folder with a config file, a real SQLite store, a fixed clock."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from syndicate.config import Config, load_config
from syndicate.ingest.items import Site
from syndicate.store import Store
from tests.smtpserver import SmtpServer

pytest_plugins = ["tests.figures"]  # prints the fault and hostile suites' figures at the end

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A clock for the services that take one: set `now` to move time."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


BASE_CONFIG = """\
site:
  title: Test Press Office
  base_url: https://press.example.org/news
  language: en
  timezone: Europe/Istanbul
  output_dir: ../public
database:
  url: sqlite:///../var/test.db
sources:
  - type: markdown
    path: ../content
topics:
  trafficking:
    title: Human trafficking
    keywords: [trafficking, traffickers]
  turkiye:
    title: Türkiye
    keywords: [Türkiye, human rights]
  ankara:
    title: From Ankara
    datelines: [Ankara]
  opinion:
    title: Opinion
    kinds: [op-ed, statement]
"""

WriteConfig = Callable[..., Config]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: config/syndicate.yaml (BASE_CONFIG) and an empty content/ folder."""
    (tmp_path / "config").mkdir()
    (tmp_path / "content").mkdir()
    (tmp_path / "config" / "syndicate.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    return tmp_path


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config" / "syndicate.yaml", environ={})


@pytest.fixture
def write_config(project: Path) -> WriteConfig:
    """Replace the project's config with `text` (dedented) and load it."""

    def write(text: str) -> Config:
        path = project / "config" / "syndicate.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return load_config(path, environ={})

    return write


# The PostgreSQL run's server (scripts/with-postgres); its tests use postgres_url().
POSTGRES_URL = os.environ.get("SYNDICATE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@functools.cache
def postgres_url() -> str:
    """This test process's own PostgreSQL database, on the server of
    SYNDICATE_TEST_POSTGRES_URL: that database itself in a run of one process, and under
    pytest-xdist one per worker (`syndicate_test_gw0`, …), created here on first use, so that
    workers never empty each other's schema. Use it rather than POSTGRES_URL."""
    assert POSTGRES_URL is not None
    given = sa.make_url(POSTGRES_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return POSTGRES_URL
    name = f"{given.database}_{worker}"
    server = sa.create_engine(given.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        server.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, config: Config) -> Iterator[Store]:
    """The project's real SQLite file, and, when SYNDICATE_TEST_POSTGRES_URL is set, an emptied
    PostgreSQL database too (this process's own: postgres_url()); either migrated to head."""
    url = config.database.url
    if request.param == "postgresql":
        url = postgres_url()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    with Store.open(url) as opened:
        yield opened


@pytest.fixture
def site(config: Config) -> Site:
    return Site(
        base_url=config.site.base_url, language=config.site.language, tz=config.site.tz, now=NOW
    )


def write_release(folder: Path, name: str, front: str, body: str = "Body text.") -> Path:
    """A Markdown release: `front` is the YAML between the '---' lines (dedented)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{textwrap.dedent(front).strip()}\n---\n{body}\n", encoding="utf-8")
    return path


def outside_environ() -> dict[str, str]:
    """This process's environment without SYNDICATE_* settings, as an admin's shell has it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE_")}


def run_syndicate(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`syndicate ARGS…` as an admin runs it: a subprocess in the project folder."""
    return subprocess.run(
        [sys.executable, "-m", "syndicate", *args],
        cwd=project,
        env={**outside_environ(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that keeps what it accepts (tests/smtpserver.py)."""
    with SmtpServer() as server:
        yield server

"""Store faults on PostgreSQL: the server restarts, between operations and in the middle of
an ingest batch, and is down for a while. The next operation reconnects by itself (the pool
pings a connection before handing it out); an operation the restart cuts off fails with one
StoreError line naming the database, and nothing of its transaction is in the store.

The server is a throwaway cluster of this module's own, made as scripts/with-postgres makes
its one (initdb, pg_ctl, a free port of 127.0.0.1, a temporary folder) and restarted for real
with pg_ctl; it is not the suite's shared server, which other tests (other pytest-xdist
workers) are using meanwhile. It is removed after the module. The server's bin folder is
SYNDICATE_TEST_POSTGRES_BIN, or the newest /usr/lib/postgresql/*/bin. These tests run in the
PostgreSQL run (SYNDICATE_TEST_POSTGRES_URL set, as scripts/with-postgres and CI do) and are
skipped without it.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syndicate.build import build
from syndicate.config import Config
from syndicate.errors import StoreError
from syndicate.ingest import ingest
from syndicate.ingest.upsert import Outcome
from syndicate.store import Store
from tests.conftest import NOW, POSTGRES_URL, write_release
from tests.figures import report

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        POSTGRES_URL is None,
        reason="SYNDICATE_TEST_POSTGRES_URL is not set (scripts/with-postgres)",
    ),
]

DATABASE = "syndicate_test"


def postgres_bin() -> Path:
    """SYNDICATE_TEST_POSTGRES_BIN (scripts/with-postgres exports it), or the newest installed
    /usr/lib/postgresql/VERSION/bin."""
    given = os.environ.get("SYNDICATE_TEST_POSTGRES_BIN")
    if given:
        return Path(given)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda bin_dir: [int(n) if n.isdigit() else n for n in bin_dir.parent.name.split(".")],
    )
    if not found:
        pytest.fail("no PostgreSQL server in /usr/lib/postgresql (Debian package: postgresql)")
    return found[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """The test cluster, driven with pg_ctl as the owner of its data folder."""

    def __init__(self, data: Path, bin_dir: Path) -> None:
        self.data = data
        self.pg_ctl = str(bin_dir / "pg_ctl")
        owner = data.stat().st_uid
        self.as_owner = (
            ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--"] if os.geteuid() != owner else []
        )
        self.log = data.parent / "log"

    def _ctl(self, *args: str) -> None:
        # -l: the server's output goes to the cluster's log, not to a pipe of ours.
        result = subprocess.run(
            [*self.as_owner, self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"pg_ctl {' '.join(args)}: {result.stderr}"

    def start_new(self, port: int) -> None:
        """The first start, as scripts/with-postgres starts its cluster: on 127.0.0.1:`port`,
        the socket in the folder above the data folder, fsync off."""
        self._ctl("-o", f"-h 127.0.0.1 -p {port} -k {self.data.parent} -c fsync=off", "start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")  # options (port, socket folder) from postmaster.opts

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def start(self) -> None:
        """With the options it was first started with (host, port, socket folder), which
        `pg_ctl start` does not remember (`restart` does, from postmaster.opts)."""
        command = shlex.split((self.data / "postmaster.opts").read_text(encoding="utf-8"))
        options = command[1:]  # the postgres binary, then its arguments
        if "-D" in options:
            at = options.index("-D")
            del options[at : at + 2]
        self._ctl("-o", shlex.join(options), "start")

    def running(self) -> bool:
        return (
            subprocess.run(
                [*self.as_owner, self.pg_ctl, "-D", str(self.data), "status"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            ).returncode
            == 0
        )


@dataclass
class Cluster:
    server: Server
    url: str  # its database DATABASE


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A throwaway cluster of this module's own, as scripts/with-postgres makes one: initdb
    as the `postgres` user when we are root (initdb refuses root), trust authentication, a
    free port of 127.0.0.1, fsync off. Stopped and removed afterwards."""
    bin_dir = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="syndicate-pg-restart-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    port = free_port()
    try:
        made = subprocess.run(
            [*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, f"initdb: {made.stderr}"
        server = Server(data, bin_dir)
        server.start_new(port)
        try:
            url = sa.make_url(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
            engine.dispose()
            yield Cluster(server, url.set(database=DATABASE).render_as_string())
        finally:
            if server.running():
                server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server(cluster: Cluster) -> Iterator[Server]:
    yield cluster.server
    if not cluster.server.running():  # never leave the module's next test without its server
        cluster.server.start()


@pytest.fixture
def pg_store(cluster: Cluster, server: Server) -> Iterator[Store]:
    """An emptied PostgreSQL database, migrated to head."""
    engine = sa.create_engine(cluster.url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    with Store.open(cluster.url) as opened:
        yield opened


def releases_in(project: Path, count: int, prefix: str) -> None:
    for n in range(count):
        write_release(
            project / "content",
            f"{prefix}{n:03}.md",
            f"title: {prefix} {n} on trafficking\npublished: 2026-11-20",
        )


def count(store: Store) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM releases")).scalar_one())


def test_the_next_operation_after_a_restart_reconnects_by_itself(
    project: Path, config: Config, server: Server, pg_store: Store
) -> None:
    releases_in(project, 5, "a")
    assert ingest(config, pg_store, NOW).counts[Outcome.NEW] == 5
    assert count(pg_store) == 5  # the pool now holds a live connection
    server.restart()
    releases_in(project, 5, "b")
    again = ingest(config, pg_store, NOW)  # no error: the dead connection is replaced
    assert (again.counts[Outcome.NEW], again.counts[Outcome.UNCHANGED]) == (5, 5)
    server.restart()
    built = build(config, pg_store, NOW)
    assert "releases/b004/index.html" in built.written
    report(
        "postgres-restart",
        "server restarted between operations (twice): the next ingest and the next build "
        "reconnected by themselves, 0 errors",
    )


def test_a_restart_in_the_middle_of_a_batch_fails_it_cleanly_and_stores_none_of_it(
    project: Path, config: Config, server: Server, pg_store: Store
) -> None:
    """The server restarts after the batch's releases are inserted and before their topics
    are: that transaction is lost whole, and the error is one line."""
    releases_in(project, 30, "c")
    restarts = 0

    def restart_mid_batch(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        nonlocal restarts
        if statement.lstrip().upper().startswith("INSERT INTO RELEASE_TOPICS") and not restarts:
            restarts += 1
            server.restart()

    sa.event.listen(pg_store.engine, "before_cursor_execute", restart_mid_batch)
    try:
        with pytest.raises(StoreError) as caught:
            ingest(config, pg_store, NOW)
    finally:
        sa.event.remove(pg_store.engine, "before_cursor_execute", restart_mid_batch)
    message = str(caught.value)
    assert restarts == 1
    assert "\n" not in message and message.startswith("database postgresql+psycopg://")
    assert "syndicate_test" in message
    assert count(pg_store) == 0  # reconnected; nothing of the cut-off batch
    again = ingest(config, pg_store, NOW)
    assert again.counts[Outcome.NEW] == 30 and count(pg_store) == 30
    report(
        "postgres-restart",
        f"server restarted mid-batch (after INSERT releases, before their topics): one line "
        f"({message.split(': ', 1)[1][:60]}…), 0 of 30 stored; the next ingest stored 30",
    )


def test_a_server_that_is_down_is_one_line_and_after_it_is_back_everything_works(
    project: Path, config: Config, server: Server, pg_store: Store
) -> None:
    releases_in(project, 5, "d")
    assert count(pg_store) == 0
    server.stop()
    try:
        with pytest.raises(StoreError) as caught:
            ingest(config, pg_store, NOW)
    finally:
        server.start()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("database postgresql+psycopg://")
    assert "Connection refused" in message or "connection failed" in message
    assert ingest(config, pg_store, NOW).counts[Outcome.NEW] == 5
    assert count(pg_store) == 5
    report(
        "postgres-restart",
        f"server down: ingest failed in one line ({message.split(': ', 1)[1][:60]}…); "
        "once it was back the same store object ingested all 5",
    )

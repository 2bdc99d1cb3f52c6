"""Migration race: processes that start together on a brand-new database (a scheduler, a
few workers, an admin's command) each open the store, and so each migrates it. Migrations are
serialised (syndicate/store/db.py `migrate`): one creates the schema, the others wait for it
and find it at head. Before, all but one failed with "table alembic_version already exists"
(or "table releases already exists").

Each process imports everything first and waits on its stdin, so that the four `Store.open`
calls start within a millisecond of each other.

A migration is also one transaction: cut off in the middle, it leaves nothing half done, and
the next start migrates from scratch.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syndicate.store import Store
from syndicate.store.db import create_engine, head_revision, migrate
from tests.conftest import BACKENDS, postgres_url
from tests.figures import report

pytestmark = pytest.mark.faults

PROCESSES = 4

OPENER = """
import sys
from syndicate.store import Store
from syndicate.store.db import current_revision
print("ready", flush=True)
sys.stdin.readline()
try:
    with Store.open(sys.argv[1]) as store:
        print(current_revision(store.engine), flush=True)
except StoreError as exc:
    print(f"error: {exc}", flush=True)
    sys.exit(1)
"""


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database that does not exist yet: a SQLite file in a folder not yet
    made, or a PostgreSQL database just created, empty, on the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/new/syndicate.db"
        return
    ours = postgres_url()
    name = f"syndicate_race_{secrets.token_hex(4)}"
    server = sa.create_engine(ours, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(ours).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        server.dispose()


def test_processes_opening_a_new_database_at_once_all_succeed(new_database: str) -> None:
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, new_database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for opener in openers:
        assert opener.stdout is not None and opener.stdout.readline() == "ready\n"
    for opener in openers:  # go
        assert opener.stdin is not None
        opener.stdin.write("\n")
        opener.stdin.flush()
    outcomes = [opener.communicate(timeout=60) for opener in openers]
    head = head_revision()
    assert [out.strip() for out, _ in outcomes] == [head] * PROCESSES, outcomes
    assert [opener.returncode for opener in openers] == [0] * PROCESSES
    engine = sa.create_engine(new_database)
    try:
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in versions] == [(head,)]
    backend = make_url(new_database).get_backend_name()
    report(
        "migration-race",
        f"{backend}: {PROCESSES} processes opened one new database at once: {PROCESSES} "
        f"succeeded, schema at {head} (one alembic_version row)",
    )


def test_a_migration_cut_off_in_the_middle_leaves_nothing_half_done(new_database: str) -> None:
    engine = create_engine(new_database)

    def fail_midway(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("CREATE TABLE digests"):  # the second migration
            raise OSError("cut off")

    sa.event.listen(engine, "before_cursor_execute", fail_midway)
    try:
        with pytest.raises(OSError, match="cut off"):
            migrate(engine)
    finally:
        sa.event.remove(engine, "before_cursor_execute", fail_midway)
    assert sa.inspect(engine).get_table_names() == []  # not even the first migration's
    engine.dispose()
    with Store.open(new_database) as store:
        assert "digests" in sa.inspect(store.engine).get_table_names()
    backend = make_url(new_database).get_backend_name()
    report(
        "migration-race",
        f"{backend}: a first migration cut off at its second revision left no table; "
        "the next open migrated to head",
    )

"""Engines and migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from syndicate.errors import StoreError
from syndicate.store import Store
from syndicate.store.db import current_revision, head_revision, migrate
from syndicate.store.schema import metadata


def test_open_creates_the_folder_and_migrates_to_the_latest_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/deep/folder/s.db"
    with Store.open(url) as store:
        assert current_revision(store.engine) == head_revision() == "0004"
        tables = set(sa.inspect(store.engine).get_table_names())
    assert {"releases", "release_topics", "source_state", "alembic_version"} <= tables


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        migrate(store.engine)
        assert current_revision(store.engine) == head_revision() == "0004"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store, store.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1


def test_a_bad_url_is_a_store_error_that_hides_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        Store.open("nosuchdb://user:s3cret@host/db")
    assert "s3cret" not in str(caught.value)
    assert "nosuchdb" in str(caught.value)


def test_an_unwritable_database_is_a_store_error(tmp_path: Path) -> None:
    folder = tmp_path / "file-not-folder"
    folder.write_text("")
    with pytest.raises(StoreError, match="database"):
        Store.open(f"sqlite:///{folder}/s.db")


def test_upgrading_a_first_revision_database_keeps_its_releases(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    with Store.open(url, upgrade=False) as store:
        migrate(store.engine, "0001")
        with store.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO releases (id, title, published, public_from, lang, kind, summary, "
                    "body_html, url, topics, attachments, retracted, content_hash, origin, "
                    "first_seen, changed_at) VALUES ('r', 'R', '2026-11-20 07:00:00', "
                    "'2026-11-20 07:00:00', 'en', 'press-release', '', '', 'https://x.org/r/', "
                    "'[]', '[]', 0, 'h', 'test', '2026-11-20 07:00:00', '2026-11-20 07:00:00')"
                )
            )
    with Store.open(url) as store, store.connect() as conn:
        assert current_revision(store.engine) == head_revision()
        assert conn.execute(sa.text("SELECT title FROM releases")).scalar_one() == "R"
        assert conn.execute(sa.text("SELECT count(*) FROM digests")).scalar_one() == 0


def test_the_migrations_build_exactly_the_tables_the_code_uses(store: Store) -> None:
    with store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_open_existing_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/none/s.db"
    assert Store.open_existing(url) is None
    assert not (tmp_path / "none").exists()
    with Store.open(url):
        pass
    existing = Store.open_existing(url)
    assert existing is not None
    existing.close()

"""The metadata database: per-area migrations and all-or-nothing transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import MetadataDB, Migration, SchemaError


@pytest.fixture
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetadataDB]:
    database = MetadataDB.in_data_root(tmp_path_factory.mktemp("berthtest-db"))
    yield database
    database.close()


NOTES = [Migration(1, ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",))]


def test_database_file_is_wal_in_data_root(db: MetadataDB) -> None:
    assert db.path.name == "metadata.db"
    assert db.connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_areas_migrate_independently_and_once(db: MetadataDB) -> None:
    assert db.ensure_schema("notes", NOTES) == 1
    assert db.ensure_schema("notes", NOTES) == 1  # idempotent
    more = [*NOTES, Migration(2, ("ALTER TABLE notes ADD COLUMN author TEXT",))]
    assert db.ensure_schema("notes", more) == 2
    assert db.ensure_schema("other", [Migration(1, ("CREATE TABLE other (x)",))]) == 1
    rows = dict(db.connection().execute("SELECT area, version FROM schema_versions"))
    assert rows == {"notes": 2, "other": 1}


def test_newer_database_is_refused(db: MetadataDB) -> None:
    db.ensure_schema("notes", [*NOTES, Migration(2, ("CREATE TABLE n2 (x)",))])
    with pytest.raises(SchemaError, match="newer"):
        db.ensure_schema("notes", NOTES)


def test_failed_migration_leaves_no_trace(db: MetadataDB) -> None:
    broken = [Migration(1, ("CREATE TABLE half (x)", "CREATE TABLE broken (syntax error here"))]
    with pytest.raises(sqlite3.OperationalError):
        db.ensure_schema("broken", broken)
    tables = {r[0] for r in db.connection().execute("SELECT name FROM sqlite_master")}
    assert "half" not in tables


def test_transaction_is_all_or_nothing(db: MetadataDB) -> None:
    db.ensure_schema("notes", NOTES)
    with pytest.raises(RuntimeError), db.transaction() as conn:
        conn.execute("INSERT INTO notes(body) VALUES ('one')")
        with db.transaction() as inner:  # nested use joins the outer transaction
            inner.execute("INSERT INTO notes(body) VALUES ('two')")
        raise RuntimeError("crash mid-change")
    assert db.connection().execute("SELECT count(*) FROM notes").fetchone()[0] == 0


def test_other_threads_do_not_see_uncommitted_rows(db: MetadataDB) -> None:
    db.ensure_schema("notes", NOTES)
    seen: list[int] = []

    def count_from_another_thread() -> None:
        seen.append(db.connection().execute("SELECT count(*) FROM notes").fetchone()[0])

    with db.transaction() as conn:
        conn.execute("INSERT INTO notes(body) VALUES ('pending')")
        reader = threading.Thread(target=count_from_another_thread)
        reader.start()
        reader.join()
    count_from_another_thread()
    assert seen == [0, 1]


def test_reopen_keeps_data(tmp_path_factory: pytest.TempPathFactory) -> None:
    root: Path = tmp_path_factory.mktemp("berthtest-db")
    first = MetadataDB.in_data_root(root)
    first.ensure_schema("notes", NOTES)
    with first.transaction() as conn:
        conn.execute("INSERT INTO notes(body) VALUES ('kept')")
    first.close()
    second = MetadataDB.in_data_root(root)
    assert second.connection().execute("SELECT body FROM notes").fetchall() == [("kept",)]
    second.close()

"""Volumes and their container references in the metadata database (area "volumes").

References are rows, not counters: acquiring twice for one container is one
reference, and the set of container ids is what the 409 message lists.
They live in the database so in-use protection survives a daemon restart.
"""

from __future__ import annotations

import json
import sqlite3

from engine.store import MetadataDB, Migration
from engine.volumes.errors import NotFound
from engine.volumes.records import VolumeRecord

AREA = "volumes"
MIGRATIONS = [
    Migration(1, (
        "CREATE TABLE volumes (name TEXT PRIMARY KEY, driver TEXT NOT NULL, created_at TEXT NOT NULL, "
        "labels TEXT NOT NULL, options TEXT NOT NULL, populated INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE volume_refs (name TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE, "
        "container_id TEXT NOT NULL, PRIMARY KEY (name, container_id))",
        "CREATE INDEX volume_refs_container ON volume_refs(container_id)",
    )),
]

_COLUMNS = "name, driver, created_at, labels, options, populated"


def _record(row: sqlite3.Row | tuple[object, ...]) -> VolumeRecord:
    name, driver, created_at, labels, options, populated = row
    return VolumeRecord(
        name=str(name), driver=str(driver), created_at=str(created_at),
        labels=json.loads(str(labels)), options=json.loads(str(options)), populated=bool(populated),
    )


def no_such_volume(name: str) -> NotFound:
    return NotFound(f"get {name}: no such volume")


class VolumeStore:
    def __init__(self, db: MetadataDB) -> None:
        self.db = db
        db.ensure_schema(AREA, MIGRATIONS)

    def insert(self, record: VolumeRecord) -> tuple[VolumeRecord, bool]:
        """Add ``record`` (True), or return the row already holding its name (False): creation is idempotent."""
        with self.db.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM volumes WHERE name = ?", (record.name,)).fetchone()
            if row is not None:
                return _record(row), False
            conn.execute(
                f"INSERT INTO volumes({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (record.name, record.driver, record.created_at, json.dumps(record.labels),
                 json.dumps(record.options), int(record.populated)),
            )
        return record, True

    def get(self, name: str) -> VolumeRecord:
        with self.db.snapshot() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM volumes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise no_such_volume(name)
        return _record(row)

    def all(self) -> list[VolumeRecord]:
        with self.db.snapshot() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM volumes ORDER BY name").fetchall()
        return [_record(r) for r in rows]

    def refs(self, name: str) -> list[str]:
        with self.db.snapshot() as conn:
            rows = conn.execute("SELECT container_id FROM volume_refs WHERE name = ? ORDER BY container_id",
                                (name,)).fetchall()
        return [str(r[0]) for r in rows]

    def all_refs(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.db.snapshot() as conn:
            for name, cid in conn.execute("SELECT name, container_id FROM volume_refs ORDER BY container_id"):
                out.setdefault(str(name), []).append(str(cid))
        return out

    def add_ref(self, name: str, container_id: str) -> None:
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone() is None:
                raise no_such_volume(name)
            conn.execute("INSERT OR IGNORE INTO volume_refs(name, container_id) VALUES (?, ?)", (name, container_id))

    def drop_ref(self, name: str, container_id: str) -> int:
        """Forget one reference; returns how many remain."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM volume_refs WHERE name = ? AND container_id = ?", (name, container_id))
            row = conn.execute("SELECT COUNT(*) FROM volume_refs WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def mark_populated(self, name: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE volumes SET populated = 1 WHERE name = ?", (name,))

    def delete_if_unused(self, name: str) -> list[str]:
        """Delete the row unless referenced; returns the referencing container ids (empty: deleted)."""
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone() is None:
                raise no_such_volume(name)
            refs = [str(r[0]) for r in conn.execute(
                "SELECT container_id FROM volume_refs WHERE name = ? ORDER BY container_id", (name,))]
            if not refs:
                conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
        return refs

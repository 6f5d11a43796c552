"""Containers in the metadata database: one row each, names unique, written in transactions."""

from __future__ import annotations

import json
import sqlite3

from engine.containers.errors import NameConflict, NoSuchContainer
from engine.containers.records import ContainerRecord
from engine.store import MetadataDB, Migration

AREA = "containers"
MIGRATIONS = [
    Migration(1, (
        "CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL, "
        "image_id TEXT NOT NULL, record TEXT NOT NULL)",
        "CREATE INDEX containers_image ON containers(image_id)",
    )),
]


class ContainerStore:
    def __init__(self, db: MetadataDB) -> None:
        self.db = db
        db.ensure_schema(AREA, MIGRATIONS)

    def add(self, record: ContainerRecord) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO containers(id, name, created, image_id, record) VALUES (?, ?, ?, ?, ?)",
                    (record.id, record.name, record.created, record.image_id, json.dumps(record.to_row())),
                )
        except sqlite3.IntegrityError as exc:
            owner = self._id_of_name(record.name)
            raise NameConflict(
                f'Conflict. The container name "/{record.name}" is already in use by container "{owner}". '
                "You have to remove (or rename) that container to be able to reuse that name."
            ) from exc

    def save(self, record: ContainerRecord) -> None:
        try:
            with self.db.transaction() as conn:
                updated = conn.execute("UPDATE containers SET name = ?, record = ? WHERE id = ?",
                                       (record.name, json.dumps(record.to_row()), record.id)).rowcount
        except sqlite3.IntegrityError as exc:
            raise NameConflict(f'Conflict. The container name "/{record.name}" is already in use') from exc
        if not updated:
            raise NoSuchContainer(record.id)

    def remove(self, container_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    def _id_of_name(self, name: str) -> str:
        with self.db.snapshot() as conn:
            row = conn.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else ""

    def get(self, ref: str) -> ContainerRecord:
        """By full id, unique id prefix, or name (with or without the leading slash), like dockerd."""
        name = ref.lstrip("/")
        with self.db.snapshot() as conn:
            row = conn.execute("SELECT record FROM containers WHERE id = ? OR name = ?", (ref, name)).fetchone()
            if row is None and ref and all(c in "0123456789abcdef" for c in ref):
                rows = conn.execute("SELECT record FROM containers WHERE id LIKE ?", (ref + "%",)).fetchall()
                if len(rows) > 1:
                    from engine.containers.errors import InvalidConfig

                    raise InvalidConfig(f"multiple IDs found with provided prefix: {ref}")
                row = rows[0] if rows else None
        if row is None:
            raise NoSuchContainer(ref)
        return ContainerRecord.from_row(json.loads(row[0]))

    def all(self) -> list[ContainerRecord]:
        with self.db.snapshot() as conn:
            rows = conn.execute("SELECT record FROM containers ORDER BY created DESC").fetchall()
        return [ContainerRecord.from_row(json.loads(r[0])) for r in rows]

    def names(self) -> set[str]:
        with self.db.snapshot() as conn:
            return {str(r[0]) for r in conn.execute("SELECT name FROM containers")}

    def containers_using(self, image_id: str) -> list[tuple[str, bool]]:
        """(container id, running) for each container of an image: the image store's ImageUsers."""
        return [(r.id, r.state.running) for r in self.all() if r.image_id == image_id]

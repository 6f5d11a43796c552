"""The classic builder's cache: (parent image, step key) → the image that step made.

moby's classic builder (builder/dockerfile/imageprobe.go) reuses an image
whose parent is the current image and whose config came from the same
instruction.  Here the step key is a digest of the substituted instruction,
the build args in effect for RUN, and for COPY/ADD a checksum of the source
files (content, mode, owner, symlink targets); see engine.build.executor.
Rows live in the metadata database (area ``build_cache``), so the cache
survives a daemon restart; a row whose image was removed is a miss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.images.image_json import now_rfc3339
from engine.store.database import MetadataDB
from engine.store.schema import Migration

log = logging.getLogger(__name__)

AREA = "build_cache"

MIGRATIONS = [
    Migration(
        1,
        (
            """CREATE TABLE build_cache (
                parent     TEXT NOT NULL,
                step_key   TEXT NOT NULL,
                image_id   TEXT NOT NULL,
                created    TEXT NOT NULL,
                PRIMARY KEY (parent, step_key)
            )""",
            "CREATE INDEX build_cache_by_image ON build_cache(image_id)",
        ),
    ),
]


@dataclass(frozen=True)
class CacheEntry:
    parent: str
    step_key: str
    image_id: str
    created: str


class BuildCache:
    def __init__(self, db: MetadataDB) -> None:
        self.db = db
        db.ensure_schema(AREA, MIGRATIONS)

    def lookup(self, parent: str, step_key: str) -> str | None:
        row = self.db.connection().execute(
            "SELECT image_id FROM build_cache WHERE parent = ? AND step_key = ?", (parent, step_key)
        ).fetchone()
        return str(row[0]) if row else None

    def record(self, parent: str, step_key: str, image_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO build_cache(parent, step_key, image_id, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(parent, step_key) DO UPDATE SET image_id = excluded.image_id, "
                "created = excluded.created",
                (parent, step_key, image_id, now_rfc3339()),
            )

    def forget(self, image_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM build_cache WHERE image_id = ?", (image_id,))

    def entries(self) -> list[CacheEntry]:
        rows = self.db.connection().execute(
            "SELECT parent, step_key, image_id, created FROM build_cache ORDER BY created"
        ).fetchall()
        return [CacheEntry(*map(str, row)) for row in rows]

    def clear(self) -> list[CacheEntry]:
        """Forget every entry; returns what was forgotten."""
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT parent, step_key, image_id, created FROM build_cache").fetchall()
            conn.execute("DELETE FROM build_cache")
        log.info("build cache cleared (%d entries)", len(rows))
        return [CacheEntry(*map(str, row)) for row in rows]

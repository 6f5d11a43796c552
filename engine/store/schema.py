"""Per-area schema migrations for the one metadata database.

Each area (images, containers, volumes, networks...) owns its tables and
declares them as an ordered list of migrations; `schema_versions` remembers
how far each area got.  Areas never touch each other's tables, so adding
an area is adding a list, not editing a shared schema file.

    IMAGE_MIGRATIONS = [Migration(1, ("CREATE TABLE images (...)", ...)), ...]
    db.ensure_schema("images", IMAGE_MIGRATIONS)

A migration is a tuple of single SQL statements (not a script) so it can run
inside the same explicit transaction as the version bump: sqlite3's
`executescript` would commit half-way.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from engine.store.errors import SchemaError

log = logging.getLogger(__name__)

VERSIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_versions (
    area    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    statements: tuple[str, ...]


def current_version(conn: sqlite3.Connection, area: str) -> int:
    row = conn.execute("SELECT version FROM schema_versions WHERE area = ?", (area,)).fetchone()
    return int(row[0]) if row else 0


def apply_migrations(conn: sqlite3.Connection, area: str, migrations: Sequence[Migration]) -> int:
    """Bring `area` up to its newest migration inside the caller's transaction.

    Returns the version reached.  A database written by newer code (version
    above what we know) is refused rather than silently misread.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise SchemaError(f"{area}: migrations must be numbered 1..n, got {versions}")
    conn.execute(VERSIONS_TABLE)
    have = current_version(conn, area)
    if have > len(migrations):
        raise SchemaError(f"{area}: database schema v{have} is newer than this Berth (v{len(migrations)})")
    for migration in migrations[have:]:
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_versions(area, version) VALUES (?, ?) "
            "ON CONFLICT(area) DO UPDATE SET version = excluded.version",
            (area, migration.version),
        )
        log.info("metadata schema %s migrated to v%d", area, migration.version)
    return len(migrations)

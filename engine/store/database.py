"""The daemon's one metadata database: sqlite3 in WAL mode at <data-root>/metadata.db.

It owns every piece of persistent state (containerd's `core/metadata` role);
blobs and snapshots on disk are only meaningful through it.

Connections: sqlite3 connections must not cross threads, so each thread gets
its own, opened lazily and closed together by `close()`.  WAL lets readers
run alongside the one writer.  Writes go through `transaction()`, which
takes the write lock up front (BEGIN IMMEDIATE) so a multi-row change is
all-or-nothing and never deadlocks on lock upgrade.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from engine.store.schema import Migration, apply_migrations

log = logging.getLogger(__name__)

DB_FILENAME = "metadata.db"
# Long enough to ride out another thread's transaction, short enough that a
# stuck writer shows up as an error instead of a hang.
BUSY_TIMEOUT_MS = 10_000


class MetadataDB:
    """A thread-safe handle on the metadata database file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        # Set WAL once; it is persistent in the file.
        self.connection().execute("PRAGMA journal_mode=WAL")

    @classmethod
    def in_data_root(cls, data_root: Path) -> MetadataDB:
        return cls(Path(data_root) / DB_FILENAME)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: transactions are explicit)."""
        if self._closed:
            raise sqlite3.ProgrammingError("metadata database is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # check_same_thread=False only so close() may run on the shutdown
            # thread; each connection is still used by its own thread alone.
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys=ON")
            # FULL: a load the API reported as done survives a power cut.
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
            self._local.depth = 0
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write.  Nested use joins the outer transaction."""
        conn = self.connection()
        depth: int = self._local.depth
        if depth:
            self._local.depth = depth + 1
            try:
                yield conn
            finally:
                self._local.depth = depth
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._local.depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read across several queries (a deferred read transaction)."""
        conn = self.connection()
        if self._local.depth:
            yield conn
            return
        conn.execute("BEGIN")
        self._local.depth = 1
        try:
            yield conn
        finally:
            self._local.depth = 0
            conn.execute("COMMIT")

    def ensure_schema(self, area: str, migrations: Sequence[Migration]) -> int:
        with self.transaction() as conn:
            return apply_migrations(conn, area, migrations)

    def close(self) -> None:
        with self._all_lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        log.debug("metadata database %s closed (%d connections)", self.path, len(conns))

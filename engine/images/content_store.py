"""Content-addressed blob storage, the on-disk half of the image store.

Layout (containerd's `content/local` store, simplified to sha256):

    <root>/blobs/sha256/<hex>     committed blobs, read-only, immutable
    <root>/ingest/<key>/data      partial writes; key is the digest hex when the
                                  digest is known (so a retry resumes), else random
    <root>/ingest/<key>/lock      flock'ed by the one writer of that key

A blob becomes visible only by `rename` of a fully written, verified, fsynced
file, followed by an fsync of the directory: a crash leaves either the whole
blob or none of it.  The store knows nothing of images; what is referenced is
decided by the metadata database and handed to `gc`.

Concurrency: writers of the same digest serialize on the ingest lock (flock,
which also excludes threads of one process since each writer opens its own
file description).  The second writer then finds the blob committed
(`BlobWriter.exists`) and skips its download.  Writers of unknown digests
never share an ingest file.

Async callers (the registry client): the writer's methods are plain,
short, blocking file operations (a `write` lands in the page cache; `commit`
does two fsyncs).  Open writers with `await store.open_writer(...)`: it
never parks a thread on the lock (a blocking `writer()` in a thread pool
can take every worker while the lock holder waits for one to commit: a
deadlock), and rehashes a partial ingest off the event loop.  Keep
`commit()` in `asyncio.to_thread` if fsync latency matters.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from engine.images.digests import hex_of, is_sha256
from engine.images.errors import Conflict, DigestMismatch, NotFound

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


class BlobLocked(Conflict):
    """Another writer is ingesting the same digest right now (only with wait=False)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """One ingest: write bytes from `offset`, then `commit()` (or leave the `with`)."""

    def __init__(
        self,
        store: ContentStore,
        digest: str | None,
        expected_size: int | None,
        ingest_dir: Path | None,
        lock_fd: int | None,
    ) -> None:
        self._store = store
        self.digest = digest
        self.expected_size = expected_size
        self._ingest_dir = ingest_dir
        self._lock_fd = lock_fd
        self._hash = hashlib.sha256()
        self._closed = False
        self.committed_digest: str | None = None
        # True when the blob was already in the store: writes are ignored and
        # commit() only returns the digest.  Callers should skip their download.
        self.exists = digest is not None and store.has(digest)
        self.offset = 0
        self._file: BinaryIO | None = None
        if not self.exists:
            self._open_data()

    def _open_data(self) -> None:
        assert self._ingest_dir is not None
        data_path = self._ingest_dir / "data"
        self._file = open(data_path, "ab+")  # noqa: SIM115 - lives as long as the writer
        self._file.seek(0)
        # sha256 state cannot be saved, so a resumed ingest rehashes what it has.
        while chunk := self._file.read(_READ_CHUNK):
            self._hash.update(chunk)
            self.offset += len(chunk)
        if self.expected_size is not None and self.offset > self.expected_size:
            log.warning("ingest %s longer than expected; restarting it", self._ingest_dir.name)
            self.reset()

    def reset(self) -> None:
        """Throw away a partial ingest and start again from offset 0."""
        if self._file is not None:
            self._file.truncate(0)
            self._file.seek(0)
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes) -> int:
        """Append `data`; returns its length, so the writer serves as a binary file
        (GzipFile, tarfile) without an adapter."""
        if self._closed:
            raise ValueError("write to a closed BlobWriter")
        if self.exists:
            return len(data)
        assert self._file is not None
        if self.expected_size is not None and self.offset + len(data) > self.expected_size:
            self._discard()
            raise DigestMismatch(
                f"blob {self.digest or '(unknown digest)'} is longer than its expected "
                f"{self.expected_size} bytes"
            )
        self._file.write(data)
        self._hash.update(data)
        self.offset += len(data)
        return len(data)

    def flush(self) -> None:
        """File protocol only: data is flushed and fsynced by commit()."""

    def commit(self) -> str:
        """Verify size and digest, then make the blob visible atomically; returns its digest."""
        if self._closed:
            if self.committed_digest is None:
                raise ValueError("commit of a closed BlobWriter")
            return self.committed_digest
        if self.exists:
            assert self.digest is not None
            self.committed_digest = self.digest
            self._remove_ingest()
            return self.digest
        assert self._file is not None
        actual = "sha256:" + self._hash.hexdigest()
        if self.expected_size is not None and self.offset != self.expected_size:
            self._discard()
            raise DigestMismatch(
                f"blob {self.digest or actual}: size {self.offset} != expected {self.expected_size}"
            )
        if self.digest is not None and actual != self.digest:
            self._discard()
            raise DigestMismatch(f"blob digest mismatch: expected {self.digest}, got {actual}")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        target = self._store.path(actual)
        target.parent.mkdir(parents=True, exist_ok=True)
        assert self._ingest_dir is not None
        data_path = self._ingest_dir / "data"
        os.chmod(data_path, 0o444)
        # rename over an existing identical blob (a racing writer of an unknown
        # digest) is harmless: same bytes, atomic replace.
        os.replace(data_path, target)
        _fsync_dir(target.parent)
        self.committed_digest = actual
        self._remove_ingest()
        log.debug("committed blob %s (%d bytes)", actual, self.offset)
        return actual

    def abort(self, keep_partial: bool | None = None) -> None:
        """Stop without committing.  A partial ingest of a known digest is kept for resume."""
        if self._closed:
            return
        keep = self.digest is not None if keep_partial is None else keep_partial
        if keep and not self.exists:
            assert self._file is not None
            self._file.close()
            self._file = None
            self._release()
        else:
            self._discard()

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._remove_ingest()

    def _remove_ingest(self) -> None:
        # Remove while still holding the lock so the next writer starts clean.
        if self._ingest_dir is not None:
            shutil.rmtree(self._ingest_dir, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        self._closed = True
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._closed:
            self.commit()
        else:
            self.abort()


class ContentStore:
    """sha256-addressed blobs under `root` (see the module docstring for layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs" / "sha256"
        self._ingest = self.root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self._blobs / hex_of(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob not found: {digest}") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob not found: {digest}") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as blob:
            return blob.read()

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store `data` (verified against `digest` when given) and return its digest."""
        with self.writer(digest, len(data)) as writer:
            writer.write(data)
        assert writer.committed_digest is not None
        return writer.committed_digest

    def writer(
        self, digest: str | None = None, expected_size: int | None = None, *, wait: bool = True
    ) -> BlobWriter:
        """Open an ingest.  With a digest, a partial ingest left by an earlier
        attempt is resumed (see `BlobWriter.offset`) and parallel writers of that
        digest take turns; `wait=False` raises BlobLocked instead of waiting."""
        if digest is not None and self.has(digest):
            # Committed blobs never change: no ingest, no lock (and no touching
            # the ingest of a writer that is still busy with this digest).
            return BlobWriter(self, digest, expected_size, None, None)
        key = hex_of(digest) if digest is not None else "ref-" + secrets.token_hex(16)
        ingest_dir = self._ingest / key
        while True:
            try:
                ingest_dir.mkdir(exist_ok=True)
            except FileExistsError:
                # mkdir saw the directory, which a finishing writer then removed
                # before pathlib's is_dir() double-check: just try again.
                continue
            if digest is None:
                return BlobWriter(self, None, expected_size, ingest_dir, None)
            lock_fd = self._lock_ingest(ingest_dir, digest, wait)
            if lock_fd is not None:
                return BlobWriter(self, digest, expected_size, ingest_dir, lock_fd)
            # The previous holder finished and removed the ingest under us: retry.

    async def open_writer(self, digest: str | None = None, expected_size: int | None = None) -> BlobWriter:
        """`writer()` for asyncio code: waits for another writer of the digest by
        polling (backing off to 100 ms) instead of blocking a thread."""
        delay = 0.002
        while True:
            try:
                return await asyncio.to_thread(self.writer, digest, expected_size, wait=False)
            except BlobLocked:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)

    @staticmethod
    def _lock_ingest(ingest_dir: Path, digest: str, wait: bool) -> int | None:
        lock_path = ingest_dir / "lock"
        try:
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            # We may have locked a lock file that its holder unlinked when it
            # committed; only the file still at lock_path counts.
            current = os.stat(lock_path)
            if current.st_ino != os.fstat(lock_fd).st_ino:
                os.close(lock_fd)
                return None
        except FileNotFoundError:
            os.close(lock_fd)
            return None
        except OSError as err:
            os.close(lock_fd)
            if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise BlobLocked(f"blob {digest} is being written by another writer") from None
            raise
        return lock_fd

    def delete(self, digest: str) -> bool:
        """Remove a blob; False if it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def walk(self) -> Iterator[str]:
        """Digests of every committed blob."""
        for entry in os.scandir(self._blobs):
            digest = "sha256:" + entry.name
            if entry.is_file() and is_sha256(digest):
                yield digest

    def clean_ingests(self) -> list[str]:
        """Remove ingests no later writer can resume: those of unknown digest (`ref-...`),
        of a digest already committed, or holding no data.  Call with no writer open
        (at daemon start); partials of known digests stay for the next pull to resume."""
        removed = []
        for entry in os.scandir(self._ingest):
            path = Path(entry.path)
            digest = "sha256:" + entry.name
            resumable = is_sha256(digest) and not self.has(digest) and (path / "data").is_file()
            if not resumable:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(entry.name)
        if removed:
            log.info("content store removed %d stale ingests", len(removed))
        return sorted(removed)

    def gc(self, referenced: set[str]) -> list[str]:
        """Delete every committed blob not in `referenced`; returns what was removed.

        The caller must make sure nothing it is about to reference is missing
        from `referenced` (the image store protects in-flight loads with leases).
        """
        removed = []
        for digest in list(self.walk()):
            if digest not in referenced and self.delete(digest):
                removed.append(digest)
        if removed:
            log.info("content gc removed %d blobs", len(removed))
        return sorted(removed)

"""What every directory-based snapshotter shares: layout, records, lifecycle, crash cleanup.

Layout under ``root``::

    metadata.json          records (see metadata.py; moves to engine/store later)
    lock                   flock'ed while a snapshotter owns the root
    snapshots/<id>/fs      the snapshot's own tree

Ids are small integers so that a mount of many layers keeps its options
short (``/var/lib/berth/snapshots/123/fs`` instead of a 64-hex ChainID).

Crash safety: directories are created before the record that names them is
saved and deleted after it is dropped, so a crash leaves at worst an orphan
directory, which :meth:`SnapshotDirs.cleanup` (run at open) deletes.
Callers must unmount a snapshot before committing or removing it.
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from engine.snapshots.errors import AlreadyExists, Conflict, InvalidParameter, NotFound, SnapshotError
from engine.snapshots.metadata import JsonMetadataStore, MetadataStore, SnapshotRecord, SnapshotState
from engine.snapshots.mounts import Mount
from engine.snapshots.snapshotter import Info, Kind, Usage
from engine.snapshots.tar_writer import DiffResult

log = logging.getLogger(__name__)


class SnapshotDirs:
    """Snapshots as numbered directories under one root, with their records in a MetadataStore.

    Everything but how a snapshot is filled and mounted: subclasses provide
    :meth:`_mounts`, and may override :meth:`_populate` (fill a new snapshot's
    directory), :meth:`_check_root` (prove the filesystem fits) and
    :meth:`_cleanup_extra`.
    """

    #: directories made in snapshots/<id>/ besides fs
    extra_dirs: tuple[str, ...] = ()

    def __init__(self, root: Path, store: MetadataStore | None = None) -> None:
        self.root = Path(os.path.abspath(root))
        (self.root / "snapshots").mkdir(parents=True, exist_ok=True)
        # Layers hold world-writable dirs and setuid files: host users must not
        # reach them except through a mount (containerd's root is 0700 too).
        os.chmod(self.root, 0o700)
        os.chmod(self.root / "snapshots", 0o700)
        self._lock_fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            raise Conflict(f"snapshot root {self.root} is in use by another snapshotter") from exc
        self._store = store if store is not None else JsonMetadataStore(self.root / "metadata.json")
        self._mutex = threading.RLock()
        self._state = self._store.load()
        try:
            self.cleanup()
            self._check_root()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    # -- queries ----------------------------------------------------------

    def stat(self, key: str) -> Info:
        with self._mutex:
            return _info(self._get(key))

    def walk(self) -> Iterator[Info]:
        with self._mutex:
            records = sorted(self._state.snapshots.values(), key=lambda r: r.id)
        for rec in records:
            yield _info(rec)

    def usage(self, key: str) -> Usage:
        with self._mutex:
            rec = self._get(key)
        if rec.kind == Kind.COMMITTED.value:
            return Usage(size=rec.size, inodes=rec.inodes)
        return disk_usage(self._fs(rec.id))

    def mounts(self, key: str) -> list[Mount]:
        with self._mutex:
            rec = self._get(key)
            if rec.kind == Kind.COMMITTED.value:
                raise InvalidParameter(f"snapshot {key!r} is committed: mount a view or an active child of it")
            return self._mounts(rec)

    def fs_path(self, key: str) -> Path:
        """The directory holding ``key``'s own tree (its overlay upperdir)."""
        with self._mutex:
            return self._fs(self._get(key).id)

    # -- changes ----------------------------------------------------------

    def prepare(self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        with self._mutex:
            rec = self._get(key)
            if rec.kind != Kind.ACTIVE.value:
                raise InvalidParameter(f"snapshot {key!r} is a {rec.kind} snapshot: only active ones commit")
            if name in self._state.snapshots:
                raise AlreadyExists(f"snapshot {name!r} already exists")
            used = disk_usage(self._fs(rec.id))
            now = time.time()
            committed = dataclasses.replace(
                rec, key=name, kind=Kind.COMMITTED.value, updated=now, size=used.size, inodes=used.inodes,
                labels=dict(labels) if labels is not None else dict(rec.labels),
            )
            state = self._copy_state()
            del state.snapshots[key]
            state.snapshots[name] = committed
            self._save(state)
        log.info("committed snapshot %s as %s (id %d, %d bytes)", key, name, rec.id, used.size)

    def update(self, key: str, labels: Mapping[str, str]) -> Info:
        with self._mutex:
            state = self._copy_state()
            rec = state.snapshots.get(key)
            if rec is None:
                raise NotFound(f"snapshot {key!r} not found")
            rec.labels, rec.updated = dict(labels), time.time()
            self._save(state)
            return _info(rec)

    def remove(self, key: str) -> None:
        with self._mutex:
            rec = self._get(key)
            children = sorted(r.key for r in self._state.snapshots.values() if r.parent == key)
            if children:
                raise Conflict(f"snapshot {key!r} has children: {', '.join(children)}")
            state = self._copy_state()
            del state.snapshots[key]
            self._save(state)
            # Out of the way under the lock, deleted outside it: a big layer
            # takes a while and other snapshots need not wait (cleanup() finishes
            # the job if we crash in between).
            doomed = self.root / "snapshots" / f"rm-{rec.id}"
            os.rename(self._dir(rec.id), doomed)
        shutil.rmtree(doomed)
        log.info("removed snapshot %s (id %d)", key, rec.id)

    def cleanup(self) -> None:
        """Delete snapshot directories no record names (left by a crash)."""
        with self._mutex:
            known = {str(r.id) for r in self._state.snapshots.values()}
            for entry in os.scandir(self.root / "snapshots"):
                if entry.name not in known:
                    log.warning("removing orphan snapshot directory %s", entry.path)
                    shutil.rmtree(entry.path)
            self._cleanup_extra()

    def _create(self, kind: Kind, key: str, parent: str | None, labels: Mapping[str, str] | None) -> list[Mount]:
        with self._mutex:
            if not key:
                raise InvalidParameter("snapshot key must not be empty")
            if key in self._state.snapshots:
                raise AlreadyExists(f"snapshot {key!r} already exists")
            if parent is not None:
                prec = self._get(parent)
                if prec.kind != Kind.COMMITTED.value:
                    raise InvalidParameter(f"parent {parent!r} is not committed")
            state = self._copy_state()
            sid = state.next_id
            state.next_id += 1
            now = time.time()
            rec = SnapshotRecord(
                key=key, id=sid, kind=kind.value, parent=parent, labels=dict(labels or {}), created=now, updated=now
            )
            state.snapshots[key] = rec
            d = self._dir(sid)
            d.mkdir()
            try:
                (d / "fs").mkdir()
                os.chmod(d / "fs", 0o755)  # a container's "/" by default, whatever our umask
                for extra in self.extra_dirs:
                    (d / extra).mkdir(mode=0o700)
                if parent is not None:
                    self._populate(rec)
                self._save(state)
            except BaseException:
                shutil.rmtree(d, ignore_errors=True)
                raise
            log.info("created %s snapshot %s (id %d) on %s", kind.value, key, sid, parent)
            return self._mounts(rec)

    # -- hooks ------------------------------------------------------------

    def _mounts(self, rec: SnapshotRecord) -> list[Mount]:
        raise NotImplementedError

    def diff(self, key: str, out: BinaryIO) -> DiffResult:
        """What ``key`` changed over its parent, as a layer tar (each kind has its own differ)."""
        raise NotImplementedError

    def _populate(self, rec: SnapshotRecord) -> None:
        """Fill a new snapshot's fs from its parent chain (nothing, when mounts stack the layers)."""

    def _check_root(self) -> None:
        """Prove the root's filesystem can hold this kind of snapshot; raise SnapshotError if not."""

    def _cleanup_extra(self) -> None:
        """Remove implementation-specific leftovers of a crash (called by cleanup)."""

    # -- internals --------------------------------------------------------

    def _chain(self, key: str | None) -> list[SnapshotRecord]:
        """The committed ancestors, nearest first (overlay's lowerdir order: top layer first)."""
        out = []
        while key is not None:
            rec = self._get(key)
            out.append(rec)
            key = rec.parent
        return out

    def _get(self, key: str) -> SnapshotRecord:
        rec = self._state.snapshots.get(key)
        if rec is None:
            raise NotFound(f"snapshot {key!r} not found")
        return rec

    def _copy_state(self) -> SnapshotState:
        return copy.deepcopy(self._state)

    def _save(self, state: SnapshotState) -> None:
        self._store.save(state)
        self._state = state

    def _dir(self, sid: int) -> Path:
        return self.root / "snapshots" / str(sid)

    def _fs(self, sid: int) -> Path:
        return self._dir(sid) / "fs"


def _info(rec: SnapshotRecord) -> Info:
    return Info(
        name=rec.key, kind=Kind(rec.kind), parent=rec.parent, labels=dict(rec.labels),
        created=rec.created, updated=rec.updated,
    )


def disk_usage(path: Path) -> Usage:
    """Allocated bytes and inodes under ``path`` (like ``du``: hardlinks once, symlinks not followed)."""
    seen: set[tuple[int, int]] = set()
    size = 0
    stack = [str(path)]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError as exc:
            raise SnapshotError(f"cannot scan {d}: {exc.strerror}") from exc
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            ident = (st.st_dev, st.st_ino)
            if ident in seen:
                continue
            seen.add(ident)
            size += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
    return Usage(size=size, inodes=len(seen))

"""The native snapshotter: every snapshot is a full copy of its parent (containerd's ``native``).

For data roots where overlayfs cannot work -- most often Berth itself running
inside a container, whose root filesystem *is* an overlay, which overlayfs
refuses as an upperdir.  It costs a copy of the parent per snapshot (GNU
``cp -a --reflink=auto``: shared extents on btrfs/xfs, a real copy elsewhere)
and mounts are plain bind mounts.  Layers land with
:attr:`~engine.snapshots.layer_apply.WhiteoutMode.DELETE`: whiteouts delete.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import BinaryIO

from engine.snapshots.errors import SnapshotError
from engine.snapshots.metadata import SnapshotRecord
from engine.snapshots.mounts import Mount
from engine.snapshots.snapshot_dirs import SnapshotDirs
from engine.snapshots.snapshotter import Kind
from engine.snapshots.tar_writer import DiffResult
from engine.snapshots.tree_diff import diff_trees

log = logging.getLogger(__name__)


class NativeSnapshotter(SnapshotDirs):
    def diff(self, key: str, out: BinaryIO) -> DiffResult:
        parent, own = self.layer_trees(key)
        return diff_trees(parent, own, out)

    def layer_trees(self, key: str) -> tuple[Path | None, Path]:
        """(the parent's full tree or None, ``key``'s own full tree): what a changes walk compares."""
        with self._mutex:
            rec = self._get(key)
            parent = self._fs(self._get(rec.parent).id) if rec.parent is not None else None
            return parent, self._fs(rec.id)

    def _populate(self, rec: SnapshotRecord) -> None:
        assert rec.parent is not None
        src = self._fs(self._get(rec.parent).id)
        dst = self._fs(rec.id)
        # -a keeps owners, modes, setuid bits, times, hardlinks, devices, symlinks and xattrs
        # (file capabilities included); -T copies src's contents (and its own attributes) onto dst.
        proc = subprocess.run(
            ["cp", "-aT", "--reflink=auto", str(src), str(dst)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SnapshotError(f"copying snapshot {rec.parent!r} for {rec.key!r} failed: {proc.stderr.strip()}")

    def _mounts(self, rec: SnapshotRecord) -> list[Mount]:
        access = "rw" if rec.kind == Kind.ACTIVE.value else "ro"
        return [Mount("bind", str(self._fs(rec.id)), ("rbind", access))]

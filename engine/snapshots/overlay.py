"""The overlayfs snapshotter (containerd's ``plugins/snapshots/overlay``, in Python).

Each snapshot's ``fs`` is an overlay upperdir while active and a lowerdir
once committed; ``work`` beside it is overlay's workdir (same filesystem, as
overlay requires).  Layers are never copied: a container's rootfs is one
overlay of its image's chain.  Layout, records and lifecycle are in
:mod:`engine.snapshots.snapshot_dirs`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from engine.snapshots.errors import MountError, SnapshotError
from engine.snapshots.layer_diff import diff_layer
from engine.snapshots.metadata import SnapshotRecord
from engine.snapshots.mounts import Mount, mount, unmount, unmount_all_under
from engine.snapshots.snapshot_dirs import SnapshotDirs
from engine.snapshots.snapshotter import Kind
from engine.snapshots.tar_writer import DiffResult

log = logging.getLogger(__name__)

# index=off: hardlink-preserving copy-up ties an upper to one exact lower stack
# (containerd sets it too).  redirect_dir/metacopy off: both record renames and
# metadata-only copies in overlay xattrs that an OCI tar diff cannot express.
OVERLAY_OPTIONS = ("index=off", "redirect_dir=off", "metacopy=off")


class OverlaySnapshotter(SnapshotDirs):
    extra_dirs = ("work",)

    def layer_dirs(self, key: str) -> tuple[list[Path], Path]:
        """(lower dirs top first, upper dir) of ``key``: what :func:`layer_diff.diff_layer` takes."""
        with self._mutex:
            rec = self._get(key)
            return [self._fs(r.id) for r in self._chain(rec.parent)], self._fs(rec.id)

    def diff(self, key: str, out: BinaryIO) -> DiffResult:
        lowers, upper = self.layer_dirs(key)
        return diff_layer(lowers, upper, out)

    def _check_root(self) -> None:
        probe_overlay(self.root)

    def _cleanup_extra(self) -> None:
        for entry in os.scandir(self.root):
            if entry.name.startswith(".probe-"):
                log.warning("removing leftover overlay probe %s", entry.path)
                unmount_all_under(Path(entry.path))
                shutil.rmtree(entry.path)

    def _mounts(self, rec: SnapshotRecord) -> list[Mount]:
        lowers = [str(self._fs(r.id)) for r in self._chain(rec.parent)]
        if rec.kind == Kind.ACTIVE.value:
            if not lowers:
                return [Mount("bind", str(self._fs(rec.id)), ("rbind", "rw"))]
            return [
                Mount(
                    "overlay",
                    "overlay",
                    (
                        *OVERLAY_OPTIONS,
                        f"workdir={self._dir(rec.id) / 'work'}",
                        f"upperdir={self._fs(rec.id)}",
                        "lowerdir=" + ":".join(lowers),
                    ),
                )
            ]
        # A view: overlay needs two lowers without an upper, so one layer is a read-only bind.
        if len(lowers) <= 1:
            source = lowers[0] if lowers else str(self._fs(rec.id))
            return [Mount("bind", source, ("rbind", "ro"))]
        return [Mount("overlay", "overlay", (*OVERLAY_OPTIONS, "ro", "lowerdir=" + ":".join(lowers)))]


def probe_overlay(root: Path) -> None:
    """Mount a tiny two-lower overlay under ``root`` to prove its filesystem can hold snapshots.

    Fails early with the kernel's own reason (e.g. "filesystem ... not
    supported as upperdir" when the data root itself is on overlayfs, as
    inside a container) instead of at the first container start; what
    containerd's overlayutils.Supported checks.
    """
    probe = Path(tempfile.mkdtemp(prefix=".probe-", dir=root))
    try:
        for name in ("l1", "l2", "u", "w", "m"):
            (probe / name).mkdir()
        (probe / "l2" / "f").write_bytes(b"")
        opts = (*OVERLAY_OPTIONS, f"workdir={probe}/w", f"upperdir={probe}/u", f"lowerdir={probe}/l1:{probe}/l2")
        try:
            mount([Mount("overlay", "overlay", opts)], probe / "m")
        except MountError as exc:
            raise SnapshotError(f"overlayfs cannot keep snapshots under {root}: {exc}") from exc
        try:
            (probe / "m" / "f").unlink()  # a whiteout in the upper: needs mknod and trusted xattrs there
        finally:
            unmount(probe / "m")
    finally:
        shutil.rmtree(probe)

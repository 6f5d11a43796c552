"""Pick the snapshotter for a data root, as dockerd picks a storage driver.

Each kind keeps its own directory (``<root>/overlay``, ``<root>/native``), as
containerd keeps one per snapshotter plugin, so switching never mixes records.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.snapshots.errors import InvalidParameter, SnapshotError
from engine.snapshots.native import NativeSnapshotter
from engine.snapshots.overlay import OverlaySnapshotter
from engine.snapshots.snapshot_dirs import SnapshotDirs

log = logging.getLogger(__name__)

KINDS = ("auto", "overlay", "native")


def open_snapshotter(root: Path, kind: str = "auto") -> SnapshotDirs:
    """The ``kind`` snapshotter under ``root``; "auto" is overlay when the filesystem allows it, else native."""
    if kind not in KINDS:
        raise InvalidParameter(f"unknown snapshotter {kind!r} (one of {', '.join(KINDS)})")
    if kind == "native":
        return NativeSnapshotter(root / "native")
    try:
        return OverlaySnapshotter(root / "overlay")
    except SnapshotError as exc:
        if kind == "overlay":
            raise
        log.warning("overlay snapshotter unusable, falling back to native copies: %s", exc)
    return NativeSnapshotter(root / "native")

"""Unpack an image's layers into committed snapshots keyed by ChainID.

OCI image-spec config.md "Layer ChainID": ``ChainID(L0) = DiffID(L0)`` and
``ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))``.
A layer whose ChainID is already a snapshot is not unpacked again: two images
with a common base share those snapshots.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.snapshots.errors import AlreadyExists, InvalidParameter, NotFound
from engine.snapshots.layer_apply import WhiteoutMode, apply_layer
from engine.snapshots.mounts import Mount
from engine.snapshots.snapshotter import Snapshotter

log = logging.getLogger(__name__)


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The ChainID of every prefix of ``diff_ids`` (so ``chain_ids(d)[-1]`` names the whole stack)."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class LayerSource:
    """One layer to unpack: how to open its blob, its media type, and the DiffID the config promises."""

    open: Callable[[], BinaryIO]
    diff_id: str
    media_type: str | None = None


def apply_target(mounts: Sequence[Mount]) -> tuple[Path, WhiteoutMode]:
    """Where (and how) a layer lands in an active snapshot, read from its mounts.

    An overlay: straight into its upperdir with overlay whiteouts -- what
    containerd's overlay applier does, without mounting anything.  A bind
    mount (a snapshot with no parent, or a native snapshot holding a copy of
    its parent): onto its source, with whiteouts carried out as deletions.
    """
    if len(mounts) != 1:
        raise InvalidParameter(f"expected one mount, got {len(mounts)}")
    m = mounts[0]
    if m.type == "bind":
        return Path(m.source), WhiteoutMode.DELETE
    for opt in m.options:
        if opt.startswith("upperdir="):
            return Path(opt[len("upperdir=") :]), WhiteoutMode.OVERLAY
    raise InvalidParameter(f"{m.type} mount has no writable directory")


def unpack(snapshotter: Snapshotter, layers: Sequence[LayerSource]) -> str:
    """Make sure every layer is a committed snapshot; returns the top ChainID."""
    if not layers:
        raise InvalidParameter("an image needs at least one layer")
    parent: str | None = None
    for chain_id, layer in zip(chain_ids([lay.diff_id for lay in layers]), layers, strict=True):
        try:
            snapshotter.stat(chain_id)
            log.debug("layer %s already unpacked as %s", layer.diff_id, chain_id)
            parent = chain_id
            continue
        except NotFound:
            pass
        key = f"extract-{uuid.uuid4().hex[:12]} {chain_id}"
        mounts = snapshotter.prepare(key, parent, labels={"berth.unpack": layer.diff_id})
        try:
            target, mode = apply_target(mounts)
            with layer.open() as blob:
                apply_layer(target, blob, layer.media_type, expected_diff_id=layer.diff_id, whiteout_mode=mode)
            snapshotter.commit(chain_id, key)
        except AlreadyExists:
            # Another unpack of the same layer won the race: use its snapshot.
            snapshotter.remove(key)
        except BaseException:
            snapshotter.remove(key)
            raise
        parent = chain_id
    assert parent is not None
    return parent

"""A snapshot's changes → a new image: `docker commit` and every build step.

The writable snapshot's diff over its parent (OCI whiteouts for deletions,
engine.snapshots.layer_diff) is streamed straight into the content store as
an uncompressed layer blob (so blob digest = diff_id, as Docker keeps local
layers); the new config is the parent's with the given runtime config, one
more history entry and, unless the diff is empty, one more
``rootfs.diff_ids`` entry (moby's image_commit.go marks an empty diff
``empty_layer`` and adds no layer).  The image is recorded with its parent,
so ``docker history`` walks it.

With ``keep_snapshot`` the snapshot itself becomes the committed snapshot of
the new layer's ChainID: the next build step stacks on it without unpacking
the blob again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.images import media_types
from engine.images.content_store import BlobWriter
from engine.images.image_json import now_rfc3339
from engine.images.image_records import ImageRecord, LayerRecord, NewImage
from engine.images.image_store import ImageStore, Lease
from engine.images.platforms import host_platform
from engine.images.reference import Reference
from engine.snapshots.errors import AlreadyExists
from engine.snapshots.snapshotter import Snapshotter
from engine.snapshots.unpack import chain_ids

log = logging.getLogger(__name__)

# sha256 of 1024 zero bytes: the tar of an empty layer (two end-of-archive blocks).
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


@dataclass(frozen=True)
class History:
    created_by: str
    comment: str = ""
    author: str = ""


class _Sink:
    """A BlobWriter as the binary file the layer tar writer writes to."""

    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        self._writer.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


def snapshot_layer(store: ImageStore, snapshotter: Snapshotter, key: str, lease: Lease) -> LayerRecord | None:
    """Store the diff of snapshot ``key`` as a layer blob; None when nothing changed."""
    with store.content.writer() as writer:
        result = snapshotter.diff(key, _Sink(writer))  # type: ignore[arg-type]
        if result.entries == 0:
            writer.abort(keep_partial=False)
            return None
        digest = lease.commit(writer)
    with store.content.open(digest) as blob:
        from engine.images.layer_blobs import describe_layer

        content = describe_layer(blob)
    return LayerRecord(content.diff_id, digest, media_types.OCI_LAYER, store.content.size(digest),
                       content.unpacked_size)


def write_image(
    store: ImageStore,
    parent: ImageRecord | None,
    runtime_config: dict[str, Any],
    history: History,
    layer: LayerRecord | None,
    lease: Lease,
    tags: Sequence[Reference] = (),
) -> ImageRecord:
    """Record an image: ``parent`` (None: scratch) + ``layer`` (None: an empty layer) + config."""
    base: dict[str, Any] = store.config(parent.id) if parent is not None else {}
    created = now_rfc3339()
    entry: dict[str, Any] = {"created": created, "created_by": history.created_by}
    if history.comment:
        entry["comment"] = history.comment
    if history.author:
        entry["author"] = history.author
    if layer is None:
        entry["empty_layer"] = True
    layers = list(parent.layers) if parent is not None else []
    if layer is not None:
        layers.append(layer)
    config: dict[str, Any] = {
        "architecture": base.get("architecture") or host_platform()["architecture"],
        "os": base.get("os") or "linux",
        "created": created,
        "config": runtime_config,
        "rootfs": {"type": "layers", "diff_ids": [item.diff_id for item in layers]},
        "history": [*(base.get("history") or []), entry],
    }
    if base.get("variant"):
        config["variant"] = base["variant"]
    if history.author:
        config["author"] = history.author
    if history.comment:
        config["comment"] = history.comment
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    digest = store.content.put(config_bytes)
    lease.protect(digest)
    return store.add_image(NewImage(digest, layers, tags=list(tags), parent=parent.id if parent else ""))


def commit_snapshot(
    store: ImageStore,
    snapshotter: Snapshotter,
    key: str,
    parent: ImageRecord | None,
    runtime_config: dict[str, Any],
    history: History,
    tags: Sequence[Reference] = (),
    keep_snapshot: bool = False,
) -> ImageRecord:
    """The image made of ``parent`` plus what snapshot ``key`` changed (see the module docstring)."""
    with store.lease() as lease:
        layer = snapshot_layer(store, snapshotter, key, lease)
        record = write_image(store, parent, runtime_config, history, layer, lease, tags)
    if keep_snapshot and layer is not None:
        chain_id = chain_ids(record.diff_ids)[-1]
        try:
            snapshotter.commit(chain_id, key)
        except AlreadyExists:
            log.debug("layer %s is already a snapshot", chain_id)
    log.info("committed snapshot %s as image %s", key, record.id)
    return record

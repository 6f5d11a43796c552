"""From a stored image to a container's root filesystem, through a snapshotter.

The image store owns the blobs; the snapshotter (engine/snapshots) owns
unpacked layers, keyed by ChainID so images sharing a base share its
snapshots.  This module only connects the two: each layer's blob is opened
from the content store (protected by a lease so a concurrent `rmi` cannot
delete it mid-unpack) and handed to the snapshotter's `unpack`, which
verifies the DiffID; then an active snapshot on top becomes the rootfs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial

from engine.images.image_records import ImageRecord
from engine.images.image_store import ImageStore
from engine.snapshots.mounts import Mount
from engine.snapshots.snapshotter import Snapshotter
from engine.snapshots.unpack import LayerSource, unpack

log = logging.getLogger(__name__)


def layer_sources(store: ImageStore, image: ImageRecord) -> list[LayerSource]:
    return [
        LayerSource(
            open=partial(store.content.open, layer.blob_digest),
            diff_id=layer.diff_id,
            media_type=layer.media_type,
        )
        for layer in image.layers
    ]


def unpack_image(store: ImageStore, snapshotter: Snapshotter, ref_or_id: str) -> str | None:
    """Unpack every layer of the image; returns the top ChainID (None for a layerless image)."""
    image = store.get(ref_or_id)
    if not image.layers:
        return None
    with store.lease() as lease:
        for layer in image.layers:
            lease.protect(layer.blob_digest)
        top = unpack(snapshotter, layer_sources(store, image))
    log.info("image %s unpacked as snapshot %s", image.id, top)
    return top


def prepare_rootfs(
    store: ImageStore,
    snapshotter: Snapshotter,
    ref_or_id: str,
    key: str,
    labels: Mapping[str, str] | None = None,
) -> list[Mount]:
    """Unpack the image if needed and prepare the writable snapshot `key` on top of it;
    returns the mounts that make up the container's rootfs."""
    parent = unpack_image(store, snapshotter, ref_or_id)
    return snapshotter.prepare(key, parent, labels=labels)

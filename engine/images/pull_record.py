"""Recording what the registry client pulled as an image of the store.

The registry client (registry/pull.py) only moves blobs; this module turns a
`PulledImage` into an image record, with Docker's naming: the tag pulled
(none for a pull by digest) and a RepoDigest `name@<digest of what the
registry served>` (the index digest for a multi-platform image).

Pull blobs through a `LeasedSink` so gc cannot collect a layer between its
download and `record_pull`:

    with store.lease() as lease:
        pulled = await pull_image(repo, ref, LeasedSink(store, lease), options)
        record = await asyncio.to_thread(record_pull, store, pulled)
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from engine.images.content_store import BlobWriter
from engine.images.errors import DigestMismatch, InvalidParameter
from engine.images.image_records import ImageRecord, LayerRecord, ManifestRecord, NewImage
from engine.images.image_store import ImageStore, Lease
from engine.images.layer_blobs import describe_layer
from engine.images.reference import Reference
from engine.images.registry.pull import PulledImage

log = logging.getLogger(__name__)


class LeasedSink:
    """The content store as the puller's BlobSink, every blob it touches leased."""

    def __init__(self, store: ImageStore, lease: Lease) -> None:
        self._store = store
        self._lease = lease

    def has(self, digest: str) -> bool:
        # Leased before the answer is used: a "yes" must stay true until recorded.
        self._lease.protect(digest)
        return self._store.content.has(digest)

    def writer(self, digest: str, expected_size: int) -> BlobWriter:
        self._lease.protect(digest)
        return self._store.content.writer(digest, expected_size)


def _describe_all(store: ImageStore, digests: list[str]) -> dict[str, tuple[str, int]]:
    """(diff_id, unpacked size) of each layer blob, read in parallel: decompression and
    hashing release the GIL, so a many-layer image records in about its largest layer's time."""
    def describe(digest: str) -> tuple[str, int]:
        with store.content.open(digest) as blob:
            content = describe_layer(blob)
        return content.diff_id, content.unpacked_size

    if len(digests) <= 1:
        return {digest: describe(digest) for digest in digests}
    with ThreadPoolExecutor(max_workers=min(4, len(digests)), thread_name_prefix="describe-layer") as pool:
        return dict(zip(digests, pool.map(describe, digests), strict=True))


def record_pull(store: ImageStore, pulled: PulledImage) -> ImageRecord:
    """Record a pulled image (all its blobs must be in the content store).

    Each layer is read once to learn its diff_id and unpacked size; a layer
    whose content is not what the config's rootfs.diff_ids says is refused
    (DigestMismatch) and nothing is recorded.
    """
    config = store.config(pulled.config.digest)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(pulled.layers):
        raise InvalidParameter(f"image {pulled.config.digest}: config diff_ids do not match the manifest's layers")
    layers = []
    described = _describe_all(store, sorted({descriptor.digest for descriptor in pulled.layers}))
    for descriptor, diff_id in zip(pulled.layers, diff_ids, strict=True):
        actual, unpacked = described[descriptor.digest]
        if actual != diff_id:
            raise DigestMismatch(f"layer {descriptor.digest} unpacks to {actual}, config says {diff_id}")
        layers.append(LayerRecord(diff_id, descriptor.digest, descriptor.media_type, descriptor.size, unpacked))
    ref = pulled.reference
    tags = [Reference(ref.domain, ref.path, ref.tag)] if ref.tag is not None and ref.digest is None else []
    served = pulled.index_digest or pulled.digest
    manifests = [ManifestRecord(pulled.digest, pulled.media_type, len(pulled.manifest), pulled.index is None)]
    if pulled.index_digest is not None and pulled.index is not None and pulled.index_media_type is not None:
        manifests.insert(0, ManifestRecord(pulled.index_digest, pulled.index_media_type, len(pulled.index), True))
    record = store.add_image(
        NewImage(
            config_digest=pulled.config.digest,
            layers=layers,
            tags=tags,
            repo_digests=[ref.repository().with_digest(served)],
            manifests=manifests,
        )
    )
    log.info("pulled %s recorded as %s", ref, record.id)
    return record

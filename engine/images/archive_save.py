"""`docker save`: write images from the store as one archive (docker-save + OCI layout).

The archive format itself is H1's `archive_write.write_docker_archive`; this
module only chooses what goes in, with moby's rules (image/tarexport/save.go):
- `name:tag` saves that tag; `name@digest` saves the image untagged;
- a bare repository name (`busybox`) saves every tag of that repository;
- an id or id prefix saves the image untagged.
Layers stored compressed (pulled) are decompressed to temp files, checked
against their diff_id on the way, since saved layers are plain tars.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from engine.images import media_types
from engine.images.archive_write import ArchiveImage, ArchiveWriteError, write_docker_archive
from engine.images.errors import DigestMismatch, InvalidParameter
from engine.images.image_records import LayerRecord
from engine.images.image_store import ImageStore
from engine.images.layer_blobs import open_uncompressed
from engine.images.reference import parse_any, parse_normalized_named

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_PLAIN_LAYER_TYPES = frozenset({media_types.OCI_LAYER, media_types.DOCKER_LAYER})


def select_images(store: ImageStore, names: Sequence[str]) -> dict[str, list[str]]:
    """image id → the familiar tags to save with it, in the order asked."""
    selected: dict[str, list[str]] = {}

    def add(image_id: str, tag: str | None) -> None:
        tags = selected.setdefault(image_id, [])
        if tag is not None and tag not in tags:
            tags.append(tag)

    for name in names:
        parsed = parse_any(name)
        if isinstance(parsed, str) or parsed.familiar_name == "sha256":
            add(store.resolve(name), None)
            continue
        named = parse_normalized_named(name)
        if named.tag is None and named.digest is None:
            in_repo = [
                (record.id, ref.familiar())
                for record in store.list()
                for ref in record.tags
                if ref.name == named.name
            ]
            for image_id, tag in in_repo:
                add(image_id, tag)
            if not in_repo:
                add(store.resolve(name), None)
            continue
        image_id = store.resolve(name)
        add(image_id, named.familiar() if named.digest is None else None)
    return selected


def save(store: ImageStore, names: Sequence[str], out: BinaryIO) -> str:
    """Write the images `names` select to `out`; returns the archive's digest."""
    if not names:
        raise InvalidParameter("nothing to save: no image names given")
    selected = select_images(store, names)
    tmp_root = store.data_root / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root, prefix="berth-save-") as tmp, store.lease() as lease:
        images = []
        for image_id, tags in selected.items():
            record = store.get(image_id)
            for blob in [image_id, *(layer.blob_digest for layer in record.layers)]:
                lease.protect(blob)  # a concurrent rmi must not pull blobs from under us
            layers = [_layer_tar(store, layer, Path(tmp)) for layer in record.layers]
            images.append(ArchiveImage(repo_tags=tags, config=store.content.read(image_id), layers=layers))
        try:
            written = write_docker_archive(out, images)
        except ArchiveWriteError as err:
            raise InvalidParameter(f"cannot save: {err}") from err
    log.info("saved %d images (%s) as %s", len(images), ", ".join(names), written.digest)
    return written.digest


def _layer_tar(store: ImageStore, layer: LayerRecord, tmp: Path) -> Path:
    if layer.media_type in _PLAIN_LAYER_TYPES and layer.blob_digest == layer.diff_id:
        return store.content.path(layer.blob_digest)
    target = tmp / (layer.diff_id.split(":", 1)[1] + ".tar")
    if target.exists():
        return target
    digest = hashlib.sha256()
    with store.content.open(layer.blob_digest) as blob, open_uncompressed(blob) as plain, open(target, "wb") as out:
        while chunk := plain.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if "sha256:" + digest.hexdigest() != layer.diff_id:
        target.unlink()
        raise DigestMismatch(f"layer blob {layer.blob_digest} does not unpack to {layer.diff_id}")
    return target

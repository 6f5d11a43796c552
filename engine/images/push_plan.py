"""What `docker push` sends for an image, and what it records afterwards.

The registry client (registry/push.py) moves a manifest and its blobs; this
module chooses them from the image store, like dockerd does:

- the tags to push: `name:tag`, or every tag of the repository when no tag is
  given (`docker push --all-tags`); none is moby's "An image does not exist
  locally with the tag";
- the manifest: the single-platform manifest the image was pulled with, when
  every blob it names is still here (the registry then sees the same digests);
  otherwise a Docker v2 schema 2 manifest built from the config and layers,
  gzipping plain-tar layers into the content store first (mtime 0, so a second
  push produces the same digests and finds "Layer already exists");
- the repositories to mount blobs from: others of the same registry the image
  was pulled from (its RepoDigests);
- after the push, `name@digest` becomes one of the image's RepoDigests.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from dataclasses import dataclass, field

from engine.images import media_types as mt
from engine.images.errors import NotFound
from engine.images.image_records import ImageRecord, LayerRecord, NewImage
from engine.images.image_store import ImageStore, Lease
from engine.images.reference import Reference, parse_normalized_named

log = logging.getLogger(__name__)

_GZIP_LEVEL = 6  # Go's compress/gzip DefaultCompression, what dockerd pushes with
_COMPRESSED_SUFFIXES = ("gzip", "+zstd")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PushPlan:
    image_id: str
    target: Reference  # name:tag as pushed
    manifest: bytes
    media_type: str
    mount_from: tuple[str, ...]
    # blob short id → diff_id short id: dockerd names push progress by the layer's diff_id.
    progress_ids: dict[str, str] = field(default_factory=dict)
    # gzipped copies of plain layers made for this push: no image references them, so
    # they go once the push's lease is released (discard_unreferenced).
    scratch: tuple[str, ...] = ()


def tags_to_push(store: ImageStore, name: str, tag: str | None) -> list[Reference]:
    """The references `POST /images/{name}/push?tag=` covers (NotFound if none exists here)."""
    named = parse_normalized_named(name)
    repo = named.repository()
    tag = tag or named.tag  # moby accepts the tag in the name too (`/images/app:v1/push`)
    if tag:
        wanted = repo.with_tag(tag)
        try:
            store.resolve(str(wanted))
        except NotFound:
            raise NotFound(f"An image does not exist locally with the tag: {wanted.familiar_name}") from None
        return [wanted]
    found = sorted({ref for record in store.list() for ref in record.tags if ref.repository() == repo},
                   key=lambda ref: ref.tag or "")
    if not found:
        raise NotFound(f"An image does not exist locally with the tag: {repo.familiar_name}")
    return found


def plan_push(store: ImageStore, lease: Lease, target: Reference) -> PushPlan:
    """The manifest and blobs to push for `target`; every blob it names is leased."""
    record = store.get(str(target))
    for digest in [record.id, *(layer.blob_digest for layer in record.layers)]:
        lease.protect(digest)
    mount_from = tuple(sorted({ref.path for ref in record.repo_digests
                               if ref.domain == target.domain and ref.path != target.path}))
    reused = _stored_manifest(store, record)
    if reused is not None:
        manifest, media_type = reused
        blob_digests = [layer.blob_digest for layer in record.layers]
    else:
        blob_digests = [_compressed_blob(store, lease, layer) for layer in record.layers]
        manifest, media_type = _schema2_manifest(store, record, blob_digests)
    progress_ids = {digest.split(":", 1)[1][:12]: layer.diff_id.split(":", 1)[1][:12]
                    for digest, layer in zip(blob_digests, record.layers, strict=True)}
    scratch = tuple(sorted(set(blob_digests) - {layer.blob_digest for layer in record.layers}))
    return PushPlan(record.id, target, manifest, media_type, mount_from, progress_ids, scratch)


def record_push(store: ImageStore, plan: PushPlan, digest: str) -> None:
    """Add `repository@digest` to the image's RepoDigests (what `docker images --digests` shows)."""
    record = store.get(plan.image_id)
    store.add_image(NewImage(config_digest=record.id, layers=record.layers,
                             repo_digests=[plan.target.repository().with_digest(digest)]))
    log.info("pushed %s as %s", plan.target, digest)


def _stored_manifest(store: ImageStore, record: ImageRecord) -> tuple[bytes, str] | None:
    """The pulled single-platform manifest, if it still describes exactly this image's blobs."""
    for entry in record.manifests:
        if entry.media_type not in mt.MANIFESTS or not store.content.has(entry.digest):
            continue
        data = store.content.read(entry.digest)
        try:
            document = json.loads(data)
            config = document["config"]["digest"]
            layers = [layer["digest"] for layer in document["layers"]]
        except (ValueError, KeyError, TypeError):
            continue
        if config == record.id and layers == [layer.blob_digest for layer in record.layers]:
            return data, entry.media_type
    return None


def _compressed_blob(store: ImageStore, lease: Lease, layer: LayerRecord) -> str:
    """The layer's blob if compressed, else a gzip of it added to the content store (leased)."""
    if layer.media_type.endswith(_COMPRESSED_SUFFIXES):
        return layer.blob_digest
    with store.content.open(layer.blob_digest) as plain, store.content.writer() as writer:
        with gzip.GzipFile(fileobj=writer,  # type: ignore[arg-type]
                            mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
            shutil.copyfileobj(plain, gz, _CHUNK)
        return lease.commit(writer)


def _schema2_manifest(store: ImageStore, record: ImageRecord, blob_digests: list[str]) -> tuple[bytes, str]:
    zstd = any(layer.media_type.endswith("+zstd") for layer in record.layers)
    layers = []
    for layer, digest in zip(record.layers, blob_digests, strict=True):
        if zstd:
            media_type = mt.OCI_LAYER_ZSTD if layer.media_type.endswith("+zstd") else mt.OCI_LAYER_GZIP
        else:
            media_type = mt.DOCKER_LAYER_GZIP
        layers.append({"mediaType": media_type, "size": store.content.size(digest), "digest": digest})
    manifest_type = mt.OCI_MANIFEST if zstd else mt.DOCKER_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": mt.OCI_CONFIG if zstd else mt.DOCKER_CONFIG,
                   "size": store.content.size(record.id), "digest": record.id},
        "layers": layers,
    }
    # Indented like dockerd's (distribution's json.MarshalIndent with three spaces).
    return json.dumps(document, indent=3).encode(), manifest_type

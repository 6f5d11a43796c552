"""`docker load`: read an image archive into the image store, all or nothing.

Two formats, detected by content:
- docker-save's `manifest.json` ([{Config, RepoTags, Layers}]), with layers at
  any path: `<id>/layer.tar` (Docker < 25, skopeo), `blobs/sha256/<hex>`
  (Docker >= 25); preferred when present, as dockerd does;
- an OCI image layout (`index.json` + `blobs/`), as `skopeo copy oci-archive:`
  and containerd write; names come from `io.containerd.image.name`, or from
  `org.opencontainers.image.ref.name` when that holds a full reference
  (`busybox:latest`; a bare tag like `latest` names nothing, as in containerd).

Layers may be plain tar, gzip, zstd (also bzip2/xz) and are stored as given.
Every blob is verified (config → image id, OCI descriptors → digest and size,
layers → the config's diff_ids).  Blobs go into the content store under a
lease, then all images and tags are recorded in ONE transaction; on any
failure the blobs this load added are removed again and InvalidArchive
is raised: nothing is stored or half-visible.
"""

from __future__ import annotations

import logging
import lzma
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import zstandard

from engine.images import media_types
from engine.images.archive_reader import ArchiveReader, parse_json
from engine.images.digests import hex_of, is_sha256, sha256_digest
from engine.images.errors import DigestMismatch, ImageError, InvalidArchive, InvalidReference
from engine.images.image_records import LayerRecord, ManifestRecord, NewImage
from engine.images.image_store import ImageStore, Lease
from engine.images.layer_blobs import describe_layer, detect_compression, oci_media_type, open_uncompressed
from engine.images.platforms import matches_host
from engine.images.reference import Reference, parse_docker_ref

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass
class LoadResult:
    """What a load recorded: tags (familiar) and ids of images that came without a name."""

    tags: list[str] = field(default_factory=list)
    untagged_ids: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)

    def messages(self) -> list[str]:
        """The lines `docker load` prints."""
        return [f"Loaded image: {tag}" for tag in self.tags] + [
            f"Loaded image ID: {image_id}" for image_id in self.untagged_ids
        ]


@dataclass
class _LayerPlan:
    """Where a layer is in the archive and what it must turn out to be."""

    member: str
    diff_id: str
    digest: str | None = None  # known for OCI descriptors, not for docker-save paths
    size: int | None = None
    media_type: str | None = None


@dataclass
class _ImagePlan:
    config: bytes
    config_digest: str
    layers: list[_LayerPlan]
    tags: list[Reference]
    manifests: list[tuple[ManifestRecord, bytes]] = field(default_factory=list)


def load(store: ImageStore, archive: BinaryIO | Path) -> LoadResult:
    """Load every image in `archive` (a path or a stream, possibly compressed)."""
    with _seekable_tar(store, archive) as fileobj:
        reader = ArchiveReader(fileobj)
        try:
            plans = _plan(reader)
            return _store(store, reader, plans)
        finally:
            reader.close()


@contextmanager
def _seekable_tar(store: ImageStore, archive: BinaryIO | Path) -> Iterator[BinaryIO]:
    """The archive as a seekable, uncompressed tar.  A stream (the API hands us a
    socket) is spooled to a temp file in the data root first; a compressed
    archive is decompressed into one."""
    if isinstance(archive, Path):
        with open(archive, "rb") as handle, _uncompressed(store, handle) as plain:
            yield plain
        return
    try:
        seekable = archive.seekable()
    except (AttributeError, OSError):
        seekable = False
    if seekable:
        with _uncompressed(store, archive) as plain:
            yield plain
        return
    with _temp_file(store) as raw:
        shutil.copyfileobj(archive, raw, _CHUNK)
        raw.seek(0)
        with _uncompressed(store, raw) as plain:
            yield plain


@contextmanager
def _uncompressed(store: ImageStore, seekable: BinaryIO) -> Iterator[BinaryIO]:
    start = seekable.tell()
    compression = detect_compression(seekable.read(8))
    seekable.seek(start)
    if compression == "none":
        yield seekable
        return
    with _temp_file(store) as plain_copy:
        try:
            with open_uncompressed(seekable) as plain:
                shutil.copyfileobj(plain, plain_copy, _CHUNK)
        except (OSError, EOFError, ValueError, zstandard.ZstdError, lzma.LZMAError) as err:
            raise InvalidArchive(f"{compression} archive does not decompress: {err}") from err
        plain_copy.seek(0)
        yield plain_copy


@contextmanager
def _temp_file(store: ImageStore) -> Iterator[BinaryIO]:
    tmp_root = spool_dir(store)
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=tmp_root, prefix="berth-load-") as handle:
        yield cast(BinaryIO, handle)


def spool_dir(store: ImageStore) -> Path:
    """Where loads spool streamed or compressed archives (unlinked temp files)."""
    return store.data_root / "tmp"


# -- reading the archive's metadata (nothing is written yet) -----------------


def _plan(reader: ArchiveReader) -> list[_ImagePlan]:
    if reader.has("manifest.json"):
        plans = _plan_docker(reader)
    elif reader.has("index.json"):
        plans = _plan_oci(reader)
    else:
        raise InvalidArchive("archive has neither manifest.json nor index.json")
    if not plans:
        raise InvalidArchive("archive holds no images")
    return plans


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidArchive(message)


def _parse_tag(text: Any) -> Reference:
    _expect(isinstance(text, str), f"invalid repo tag {text!r}")
    try:
        ref = parse_docker_ref(text)
    except InvalidReference as err:
        raise InvalidArchive(f"invalid repo tag {text!r}: {err}") from err
    _expect(ref.digest is None, f"repo tag {text!r} has a digest")
    return ref


def _config_diff_ids(config: bytes, what: str) -> list[str]:
    parsed = parse_json(config, what)
    _expect(isinstance(parsed, dict), f"{what} is not a JSON object")
    rootfs = parsed.get("rootfs")
    _expect(isinstance(rootfs, dict) and rootfs.get("type") == "layers", f"{what}: rootfs is not of type layers")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    _expect(
        isinstance(diff_ids, list) and all(isinstance(d, str) and is_sha256(d) for d in diff_ids),
        f"{what}: rootfs.diff_ids must be a list of sha256 digests",
    )
    assert isinstance(diff_ids, list)
    return diff_ids


def _plan_docker(reader: ArchiveReader) -> list[_ImagePlan]:
    manifest = reader.read_json("manifest.json")
    _expect(isinstance(manifest, list), "manifest.json is not a list")
    plans = []
    for entry in manifest:
        _expect(isinstance(entry, dict), "manifest.json entry is not an object")
        config_path, layers, repo_tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags") or []
        _expect(isinstance(config_path, str), "manifest.json entry has no Config path")
        _expect(isinstance(layers, list) and all(isinstance(p, str) for p in layers),
                "manifest.json entry has no Layers list")
        _expect(isinstance(repo_tags, list), "manifest.json RepoTags is not a list")
        assert isinstance(config_path, str) and isinstance(layers, list)
        config = reader.read(config_path)
        diff_ids = _config_diff_ids(config, config_path)
        _expect(len(diff_ids) == len(layers),
                f"{config_path}: {len(diff_ids)} diff_ids for {len(layers)} layers")
        for path in layers:
            reader.resolve(path)  # present, regular, inside the archive
        plans.append(
            _ImagePlan(
                config=config,
                config_digest=sha256_digest(config),
                layers=[_LayerPlan(path, diff_id) for path, diff_id in zip(layers, diff_ids, strict=True)],
                tags=[_parse_tag(tag) for tag in repo_tags],
            )
        )
    return plans


def _descriptor(value: Any, what: str) -> tuple[str, int, str]:
    _expect(isinstance(value, dict), f"{what}: descriptor is not an object")
    digest, size, media_type = value.get("digest"), value.get("size"), value.get("mediaType")
    _expect(isinstance(digest, str) and is_sha256(digest), f"{what}: unsupported or malformed digest {digest!r}")
    _expect(isinstance(size, int) and not isinstance(size, bool) and size >= 0, f"{what}: invalid size {size!r}")
    _expect(isinstance(media_type, str), f"{what}: missing mediaType")
    assert isinstance(digest, str) and isinstance(size, int) and isinstance(media_type, str)
    return digest, size, media_type


def _read_blob(reader: ArchiveReader, digest: str, size: int) -> bytes:
    data = reader.read(f"blobs/sha256/{hex_of(digest)}")
    if len(data) != size or sha256_digest(data) != digest:
        raise InvalidArchive(f"blob {digest} does not match its descriptor (size or digest)")
    return data


def _names_from_annotations(annotations: Any) -> list[Reference]:
    if not isinstance(annotations, dict):
        return []
    full = annotations.get(media_types.ANNOTATION_IMAGE_NAME)
    if isinstance(full, str) and full:
        return [_parse_tag(full)]
    ref_name = annotations.get(media_types.ANNOTATION_REF_NAME)
    if isinstance(ref_name, str) and (":" in ref_name or "/" in ref_name):
        return [_parse_tag(ref_name)]
    return []


def _plan_oci(reader: ArchiveReader) -> list[_ImagePlan]:
    if reader.has("oci-layout"):
        layout = reader.read_json("oci-layout")
        _expect(isinstance(layout, dict) and isinstance(layout.get("imageLayoutVersion"), str),
                "oci-layout has no imageLayoutVersion")
    index = reader.read_json("index.json")
    _expect(isinstance(index, dict) and isinstance(index.get("manifests"), list),
            "index.json has no manifests list")
    by_config: dict[str, _ImagePlan] = {}
    for position, entry in enumerate(index["manifests"]):
        what = f"index.json manifests[{position}]"
        digest, size, media_type = _descriptor(entry, what)
        names = _names_from_annotations(entry.get("annotations"))
        outer: list[tuple[ManifestRecord, bytes]] = []
        if media_type in media_types.INDEXES:
            data = _read_blob(reader, digest, size)
            outer.append((ManifestRecord(digest, media_type, size, is_target=True), data))
            digest, size, media_type = _pick_from_index(reader, parse_json(data, digest), digest)
        _expect(media_type in media_types.MANIFESTS, f"{what}: unsupported media type {media_type}")
        data = _read_blob(reader, digest, size)
        manifest_record = ManifestRecord(digest, media_type, size, is_target=not outer)
        plan = _plan_manifest(reader, parse_json(data, digest), digest)
        plan.manifests = [*outer, (manifest_record, data)]
        known = by_config.get(plan.config_digest)
        if known is None:
            by_config[plan.config_digest] = plan
            known = plan
        known.tags.extend(name for name in names if name not in known.tags)
    return list(by_config.values())


def _pick_from_index(reader: ArchiveReader, index: Any, digest: str) -> tuple[str, int, str]:
    """The child manifest to load: the host's platform if present, else the first
    one whose blob the archive has (attestations never count)."""
    _expect(isinstance(index, dict) and isinstance(index.get("manifests"), list), f"index {digest} has no manifests")
    candidates = []
    for position, child in enumerate(index["manifests"]):
        child_digest, child_size, child_type = _descriptor(child, f"index {digest} manifests[{position}]")
        annotations = child.get("annotations") or {}
        if isinstance(annotations, dict) and media_types.ANNOTATION_REFERENCE_TYPE in annotations:
            continue
        if child_type in media_types.MANIFESTS and reader.has(f"blobs/sha256/{hex_of(child_digest)}"):
            candidates.append((matches_host(child.get("platform")), child_digest, child_size, child_type))
    _expect(bool(candidates), f"index {digest}: no manifest of it is in the archive")
    best = next((c for c in candidates if c[0]), candidates[0])
    return best[1], best[2], best[3]


def _plan_manifest(reader: ArchiveReader, manifest: Any, digest: str) -> _ImagePlan:
    _expect(isinstance(manifest, dict), f"manifest {digest} is not an object")
    config_digest, config_size, _config_type = _descriptor(manifest.get("config"), f"manifest {digest} config")
    config = _read_blob(reader, config_digest, config_size)
    diff_ids = _config_diff_ids(config, f"config {config_digest}")
    layers = manifest.get("layers")
    _expect(isinstance(layers, list), f"manifest {digest} has no layers list")
    assert isinstance(layers, list)
    _expect(len(layers) == len(diff_ids), f"manifest {digest}: {len(layers)} layers for {len(diff_ids)} diff_ids")
    plans = []
    for position, (layer, diff_id) in enumerate(zip(layers, diff_ids, strict=True)):
        layer_digest, layer_size, layer_type = _descriptor(layer, f"manifest {digest} layers[{position}]")
        _expect(layer_type in media_types.LAYERS, f"manifest {digest}: unsupported layer type {layer_type}")
        member = f"blobs/sha256/{hex_of(layer_digest)}"
        reader.resolve(member)
        plans.append(_LayerPlan(member, diff_id, layer_digest, layer_size, layer_type))
    return _ImagePlan(config=config, config_digest=config_digest, layers=plans, tags=[])


# -- writing blobs, verifying layers, recording images -----------------------


def _store(store: ImageStore, reader: ArchiveReader, plans: list[_ImagePlan]) -> LoadResult:
    added: set[str] = set()
    try:
        with store.lease() as lease:
            images = [_store_image(store, reader, plan, lease, added) for plan in plans]
            store.add_images(images)
    except ImageError as err:
        removed = store.discard_unreferenced(added)
        log.warning("load failed, removed %d blobs it had added: %s", len(removed), err)
        if isinstance(err, InvalidArchive):
            raise
        raise InvalidArchive(str(err)) from err
    except BaseException:
        store.discard_unreferenced(added)
        raise
    result = LoadResult()
    for plan in plans:
        result.image_ids.append(plan.config_digest)
        if plan.tags:
            result.tags.extend(tag.familiar() for tag in plan.tags)
        else:
            result.untagged_ids.append(plan.config_digest)
    log.info("loaded %d images: %s", len(plans), ", ".join(result.messages()))
    return result


def _store_image(
    store: ImageStore, reader: ArchiveReader, plan: _ImagePlan, lease: Lease, added: set[str]
) -> NewImage:
    _put_bytes(store, plan.config, plan.config_digest, lease, added)
    for record, data in plan.manifests:
        _put_bytes(store, data, record.digest, lease, added)
    described: dict[str, tuple[str, int]] = {}
    layers = []
    for layer in plan.layers:
        blob_digest = _put_member(store, reader, layer, lease, added)
        if blob_digest not in described:
            with store.content.open(blob_digest) as blob:
                content = describe_layer(blob)
            described[blob_digest] = (content.diff_id, content.unpacked_size)
            if layer.media_type is None:
                layer.media_type = oci_media_type(content.compression)
        diff_id, unpacked = described[blob_digest]
        if diff_id != layer.diff_id:
            raise InvalidArchive(f"layer {layer.member}: content is {diff_id}, config says {layer.diff_id}")
        assert layer.media_type is not None
        layers.append(LayerRecord(diff_id, blob_digest, layer.media_type, store.content.size(blob_digest), unpacked))
    return NewImage(
        config_digest=plan.config_digest,
        layers=layers,
        tags=plan.tags,
        manifests=[record for record, _data in plan.manifests],
    )


def _put_bytes(store: ImageStore, data: bytes, digest: str, lease: Lease, added: set[str]) -> None:
    lease.protect(digest)
    if not store.content.has(digest):
        store.content.put(data, digest)
        added.add(digest)


def _put_member(store: ImageStore, reader: ArchiveReader, layer: _LayerPlan, lease: Lease, added: set[str]) -> str:
    if layer.digest is not None:
        lease.protect(layer.digest)
        if store.content.has(layer.digest):
            return layer.digest
    try:
        with reader.open(layer.member) as source, store.content.writer(layer.digest, layer.size) as writer:
            if writer.exists:  # only with a known digest: another load stored it meanwhile
                assert layer.digest is not None
                return layer.digest
            writer.reset()  # an archive is read from its start, never resumed
            while chunk := source.read(_CHUNK):
                writer.write(chunk)
            digest = lease.commit(writer)
    except DigestMismatch as err:
        raise InvalidArchive(f"layer {layer.member}: {err}") from err
    except (OSError, EOFError, tarfile.TarError) as err:
        raise InvalidArchive(f"layer {layer.member} cannot be read: {err}") from err
    added.add(digest)
    return digest

"""Writes image archives in the layout `docker save` produces since Docker 25.

One tar holds both views of the same images, so old and new loaders read it:
- the legacy view: `manifest.json` (a list of {Config, RepoTags, Layers}) and
  `repositories` ({familiar name: {tag: top layer id}});
- an OCI image layout: `oci-layout`, `index.json` and content-addressed
  `blobs/sha256/<hex>` (layers, configs and one OCI manifest per image).

Everything written here is deterministic: the same inputs give byte-identical
output (sorted entries, fixed mtimes, numeric owners without names, no pax
timestamps), which is what makes seed images reproducible and lets a saved
archive be compared by digest.

Layers are stored uncompressed (media type `application/vnd.oci.image.layer.v1.tar`),
as `docker save` does, so a layer blob's digest is also its diff_id.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from engine.images import media_types

log = logging.getLogger(__name__)

LAYER_MEDIA_TYPE = media_types.OCI_LAYER
CONFIG_MEDIA_TYPE = media_types.OCI_CONFIG
MANIFEST_MEDIA_TYPE = media_types.OCI_MANIFEST
INDEX_MEDIA_TYPE = media_types.OCI_INDEX
OCI_LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'

# containerd's annotation for the full image name (what `docker load` of an
# OCI layout, and containerd's importer, use to tag the image).
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
# image-spec annotations.md: the tag part of the reference.
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

# Overlayfs marks deleted files with a 0:0 character device and replaced
# directories with this xattr; layer tars carry AUFS-style `.wh.` entries
# instead (image-spec layer.md#whiteouts).
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
# File capabilities are the one xattr an image must keep for binaries to work
# (ping, for instance); others (selinux labels...) belong to the host.
_KEPT_XATTRS = ("security.capability",)

_CHUNK = 1 << 20

_NAME_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ArchiveWriteError(Exception):
    """An archive or layer could not be written from the given inputs."""


class InvalidReference(ArchiveWriteError):
    """A repo tag is not a valid `name[:tag]` reference."""


class InvalidImage(ArchiveWriteError):
    """An image's config does not agree with its layers."""


@dataclass(frozen=True)
class BlobDigest:
    """A blob's content address and length."""

    digest: str  # "sha256:<hex>"
    size: int

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass(frozen=True)
class ArchiveImage:
    """One image to save: its tags, its config JSON exactly as stored, its layer tars.

    `layers` are uncompressed tar files, bottom layer first; their sha256 must
    equal the config's `rootfs.diff_ids`, in order.
    """

    repo_tags: Sequence[str]
    config: bytes
    layers: Sequence[Path]


@dataclass(frozen=True)
class ImageReference:
    """A tagged reference in its three spellings."""

    familiar_name: str  # "busybox", "me/app", "localhost:5000/app"
    full_name: str  # "docker.io/library/busybox"
    tag: str

    def __str__(self) -> str:
        return f"{self.full_name}:{self.tag}"

    @property
    def familiar(self) -> str:
        return f"{self.familiar_name}:{self.tag}"


def parse_tagged_reference(text: str) -> ImageReference:
    """Normalizes `name[:tag]` the way the Docker CLI does (docker.io, library/, latest)."""
    if "@" in text:
        raise InvalidReference(f"{text!r}: a saved image is named by tag, not digest")
    name, tag = text, "latest"
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        name, tag = text[:colon], text[colon + 1 :]
    if not _TAG.match(tag):
        raise InvalidReference(f"{text!r}: invalid tag {tag!r}")
    parts = name.split("/")
    first = parts[0]
    has_domain = len(parts) > 1 and ("." in first or ":" in first or first == "localhost")
    domain = first if has_domain else "docker.io"
    path = parts[1:] if has_domain else parts
    if not path or not all(_NAME_COMPONENT.match(p) for p in path):
        raise InvalidReference(f"{text!r}: invalid repository name")
    if domain == "docker.io" and len(path) == 1:
        path = ["library", *path]
    full_name = f"{domain}/{'/'.join(path)}"
    if domain == "docker.io":
        familiar = "/".join(path[1:] if path[0] == "library" and len(path) == 2 else path)
    else:
        familiar = full_name
    return ImageReference(familiar_name=familiar, full_name=full_name, tag=tag)


class _CountingDigestWriter:
    """Passes writes through while counting and hashing them.

    tarfile asks its file object for tell(), which a pipe or socket (the engine
    streams `docker save` to the client) cannot answer; the count can.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    # tarfile's file-object protocol also names these; writing never uses them.
    def read(self, size: int, /) -> bytes:
        raise io.UnsupportedOperation("write-only stream")

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("write-only stream")

    def close(self) -> None:
        """The caller owns `out` and closes it."""

    def result(self) -> BlobDigest:
        return BlobDigest(f"sha256:{self._hash.hexdigest()}", self.size)


def digest_file(path: Path) -> BlobDigest:
    """sha256 and size of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return BlobDigest(f"sha256:{h.hexdigest()}", size)


def digest_bytes(data: bytes) -> BlobDigest:
    return BlobDigest(f"sha256:{hashlib.sha256(data).hexdigest()}", len(data))


# ---------------------------------------------------------------- layer tars


def write_layer_tar(
    rootfs: Path,
    out: BinaryIO,
    *,
    mtime: int | None = None,
    owner: tuple[int, int] | None = None,
    overlay_whiteouts: bool = False,
) -> BlobDigest:
    """Writes the tree under `rootfs` as an uncompressed layer tar; returns its digest.

    Entries are relative (`bin/`, `bin/sh`), parents before children, siblings
    in byte order.  Owners are numeric only (no user or group names: they would
    depend on the building host's /etc/passwd).  `mtime`, when given, replaces
    every entry's modification time so the output depends on content only;
    `owner`, when given, replaces every entry's (uid, gid) (a tree assembled by
    an unprivileged user that should belong to root in the image).
    Hard links inside the tree become tar hard links to the first path seen.
    With `overlay_whiteouts`, the tree is an overlayfs upper dir: 0:0 character
    devices become `.wh.<name>` entries and opaque directories get `.wh..wh..opq`.
    Sockets are skipped, as Docker does.
    """
    if not rootfs.is_dir():
        raise ArchiveWriteError(f"{rootfs}: not a directory")
    writer = _CountingDigestWriter(out)
    with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        first_path_of_inode: dict[tuple[int, int], str] = {}
        for rel, path in _walk_sorted(rootfs):
            info = _layer_entry(rel, path, mtime, overlay_whiteouts, first_path_of_inode)
            if info is None:
                continue
            if owner is not None:
                info.uid, info.gid = owner
            if info.isreg() and info.size:
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if info.isdir() and overlay_whiteouts and _is_opaque(path):
                tar.addfile(_whiteout_info(f"{rel}/{OPAQUE_WHITEOUT}", info))
    return writer.result()


def _walk_sorted(dir_path: Path, rel_dir: str = "") -> Iterator[tuple[str, Path]]:
    """Depth-first, each directory before its contents, siblings in byte order (like Go's filepath.Walk)."""
    with os.scandir(dir_path) as it:
        names = sorted((e.name for e in it), key=os.fsencode)
    for name in names:
        rel = f"{rel_dir}/{name}" if rel_dir else name
        path = dir_path / name
        yield rel, path
        if stat.S_ISDIR(path.lstat().st_mode):
            yield from _walk_sorted(path, rel)


def _layer_entry(
    rel: str,
    path: Path,
    mtime: int | None,
    overlay_whiteouts: bool,
    first_path_of_inode: dict[tuple[int, int], str],
) -> tarfile.TarInfo | None:
    st = path.lstat()
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = mtime if mtime is not None else int(st.st_mtime)
    kind = st.st_mode
    if stat.S_ISDIR(kind):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(kind):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in first_path_of_inode:
            info.type = tarfile.LNKTYPE
            info.linkname = first_path_of_inode[key]
        else:
            if st.st_nlink > 1:
                first_path_of_inode[key] = rel
            info.type = tarfile.REGTYPE
            info.size = st.st_size
    elif stat.S_ISLNK(kind):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISCHR(kind) and overlay_whiteouts and st.st_rdev == 0:
        parent, _, name = rel.rpartition("/")
        whiteout = f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else f"{WHITEOUT_PREFIX}{name}"
        return _whiteout_info(whiteout, info)
    elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(kind) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(kind):
        info.type = tarfile.FIFOTYPE
    else:
        log.info("layer %s: skipping %s (socket or unknown file type)", path.parent, rel)
        return None
    caps = _kept_xattrs(path, kind)
    if caps:
        # pax SCHILY.xattr records carry raw bytes; surrogateescape lets
        # tarfile write them back unchanged (it then marks hdrcharset=BINARY).
        info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in caps}
    return info


def _whiteout_info(name: str, like: tarfile.TarInfo) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.mode = 0o600
    info.uid, info.gid = like.uid, like.gid
    info.uname = info.gname = ""
    info.mtime = like.mtime
    return info


def _kept_xattrs(path: Path, kind: int) -> list[tuple[str, bytes]]:
    if stat.S_ISLNK(kind):
        return []
    found = []
    for name in _KEPT_XATTRS:
        try:
            found.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue  # absent (ENODATA) or unsupported by the filesystem
    return found


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, _OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


# ------------------------------------------------------------ docker archives


def write_docker_archive(out: BinaryIO, images: Sequence[ArchiveImage], *, mtime: int = 0) -> BlobDigest:
    """Writes `images` as one `docker save` archive to `out`; returns the archive's digest.

    Layers shared by several images are stored once.  Every entry gets `mtime`.
    """
    if not images:
        raise ArchiveWriteError("nothing to save: no images given")
    blobs: dict[str, tuple[BlobDigest, Path | bytes]] = {}
    legacy_manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    index_manifests: list[dict[str, Any]] = []

    for image in images:
        refs = [parse_tagged_reference(t) for t in image.repo_tags]
        if not image.layers:
            # Docker refuses too ("empty export - not implemented"): loaders expect a top layer.
            raise InvalidImage(f"image {list(image.repo_tags)} has no layers")
        layer_digests = [_layer_blob(path, blobs) for path in image.layers]
        config = _parse_config(image.config)
        _check_diff_ids(config, layer_digests)
        config_digest = _bytes_blob(image.config, blobs)
        platform = _platform_of(config)
        manifest = _oci_manifest(config_digest, layer_digests)
        manifest_digest = _bytes_blob(manifest, blobs)
        for ref in refs:
            # Docker 25+ names the top layer's diff_id here (the legacy "image id" slot).
            repositories.setdefault(ref.familiar_name, {})[ref.tag] = layer_digests[-1].hex
            index_manifests.append(
                {
                    "mediaType": MANIFEST_MEDIA_TYPE,
                    "digest": manifest_digest.digest,
                    "size": manifest_digest.size,
                    "annotations": {ANNOTATION_IMAGE_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag},
                    "platform": platform,
                }
            )
        legacy_manifest.append(
            {
                "Config": f"blobs/sha256/{config_digest.hex}",
                "RepoTags": [ref.familiar for ref in refs],
                "Layers": [f"blobs/sha256/{d.hex}" for d in layer_digests],
            }
        )

    index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": index_manifests}
    writer = _CountingDigestWriter(out)
    with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_archive_dir("blobs/", mtime))
        tar.addfile(_archive_dir("blobs/sha256/", mtime))
        for hex_digest in sorted(blobs):
            digest, source = blobs[hex_digest]
            info = _archive_file(f"blobs/sha256/{hex_digest}", digest.size, mtime)
            if isinstance(source, bytes):
                tar.addfile(info, io.BytesIO(source))
            else:
                with source.open("rb") as f:
                    tar.addfile(info, f)
        _add_bytes(tar, "index.json", _compact_json(index), mtime)
        # Docker's Go encoder ends these two with a newline; keep the bytes alike.
        _add_bytes(tar, "manifest.json", _compact_json(legacy_manifest) + b"\n", mtime)
        _add_bytes(tar, "oci-layout", OCI_LAYOUT, mtime)
        if repositories:
            _add_bytes(tar, "repositories", _compact_json(repositories) + b"\n", mtime)
    return writer.result()


def _layer_blob(path: Path, blobs: dict[str, tuple[BlobDigest, Path | bytes]]) -> BlobDigest:
    digest = digest_file(path)
    blobs.setdefault(digest.hex, (digest, path))
    return digest


def _bytes_blob(data: bytes, blobs: dict[str, tuple[BlobDigest, Path | bytes]]) -> BlobDigest:
    digest = digest_bytes(data)
    blobs.setdefault(digest.hex, (digest, data))
    return digest


def _parse_config(config: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(config)
    except ValueError as e:
        raise InvalidImage(f"image config is not JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise InvalidImage("image config is not a JSON object")
    return parsed


def _check_diff_ids(config: dict[str, Any], layers: Sequence[BlobDigest]) -> None:
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    actual = [d.digest for d in layers]
    if diff_ids != actual:
        raise InvalidImage(f"config rootfs.diff_ids {diff_ids} do not match the layers' digests {actual}")


def _platform_of(config: dict[str, Any]) -> dict[str, str]:
    platform = {"architecture": str(config.get("architecture", "")), "os": str(config.get("os", ""))}
    if config.get("variant"):
        platform["variant"] = str(config["variant"])
    if not platform["architecture"] or not platform["os"]:
        raise InvalidImage("image config lacks architecture or os")
    return platform


def _oci_manifest(config: BlobDigest, layers: Sequence[BlobDigest]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": d.digest, "size": d.size} for d in layers],
    }
    return _compact_json(manifest)


def _compact_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _archive_dir(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = mtime
    info.uname = info.gname = ""
    return info


def _archive_file(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = mtime
    info.uname = info.gname = ""
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    tar.addfile(_archive_file(name, len(data), mtime), io.BytesIO(data))

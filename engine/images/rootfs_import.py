"""`docker import`: a one-layer image from a root filesystem tarball.

The tarball may be plain or compressed (gzip, zstd, bzip2, xz); it is stored
uncompressed, so the layer blob's digest is its diff_id, as `docker save`
expects.  The config follows moby's daemon/images/image_import.go: host
platform, `created` now, the message as `comment` and as the single history
entry, and `--change` instructions applied to the runtime config.
"""

from __future__ import annotations

import json
import logging
import lzma
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

import zstandard

from engine.images import media_types
from engine.images.config_changes import apply_changes
from engine.images.content_store import BlobWriter
from engine.images.errors import InvalidArchive, InvalidParameter
from engine.images.image_json import now_rfc3339
from engine.images.image_records import ImageRecord, LayerRecord, NewImage
from engine.images.image_store import ImageStore, Lease
from engine.images.layer_blobs import describe_layer, open_uncompressed
from engine.images.platforms import host_platform
from engine.images.reference import parse_normalized_named

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def import_rootfs(
    store: ImageStore,
    tarball: BinaryIO | Path,
    ref: str | None = None,
    changes: Sequence[str] = (),
    message: str = "",
    source: str = "-",
) -> ImageRecord:
    """Import `tarball` as a new image, tagged `ref` if given.  `source` is what the
    default history comment names ("Imported from -" for stdin, or a URL/path)."""
    tag = None
    if ref:
        tag = parse_normalized_named(ref)
        if tag.digest is not None:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        if tag.tag is None:
            tag = tag.with_tag("latest")
    runtime_config = apply_changes({}, list(changes))
    with store.lease() as lease:
        if isinstance(tarball, Path):
            with open(tarball, "rb") as handle:
                layer_digest = _store_uncompressed(store, handle, lease)
        else:
            layer_digest = _store_uncompressed(store, tarball, lease)
        try:
            with store.content.open(layer_digest) as blob:
                content = describe_layer(blob)
            created = now_rfc3339()
            comment = message or f"Imported from {source}"
            config: dict[str, Any] = {
                **host_platform(),
                "created": created,
                "comment": comment,
                "config": runtime_config,
                "rootfs": {"type": "layers", "diff_ids": [content.diff_id]},
                "history": [{"created": created, "comment": comment}],
            }
            config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
            lease.protect(config_digest := store.content.put(config_bytes))
            layer = LayerRecord(
                content.diff_id,
                layer_digest,
                media_types.OCI_LAYER,
                store.content.size(layer_digest),
                content.unpacked_size,
            )
            record = store.add_image(NewImage(config_digest, [layer], tags=[tag] if tag else []))
        except BaseException:
            lease.release()
            store.discard_unreferenced({layer_digest})
            raise
    log.info("imported %s as %s", source, record.id)
    return record


def _store_uncompressed(store: ImageStore, source: BinaryIO, lease: Lease) -> str:
    """Stream the (decompressed) tarball into the content store; returns the blob digest."""
    raw = source if source.seekable() else cast(BinaryIO, _BufferedHead(source))
    try:
        with open_uncompressed(raw) as plain, store.content.writer() as writer:
            shutil.copyfileobj(plain, _WriterSink(writer), _CHUNK)
            digest = lease.commit(writer)
    except (OSError, EOFError, zstandard.ZstdError, lzma.LZMAError) as err:
        raise InvalidArchive(f"import source does not decompress: {err}") from err
    return digest


class _WriterSink:
    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        self._writer.write(data)
        return len(data)


class _BufferedHead:
    """Lets open_uncompressed sniff the magic bytes of a socket and rewind."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._head = inner.read(8)
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or offset > len(self._head) or self._pos > len(self._head):
            raise OSError("stream is not seekable")
        self._pos = offset
        return offset

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        head = b""
        if self._pos < len(self._head):
            head = self._head[self._pos :] if size < 0 else self._head[self._pos : self._pos + size]
            self._pos += len(head)
            if size >= 0:
                size -= len(head)
                if size == 0:
                    return head
        rest = self._inner.read(size)
        self._pos += len(rest)
        return head + rest

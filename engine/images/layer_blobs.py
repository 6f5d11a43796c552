"""Layer blobs: which compression they use, and what they hold once uncompressed.

Docker and containerd accept layers as plain tar, gzip or zstd (OCI
image-spec layer.md media types), and `docker load` also bzip2 and xz; the
compression is detected from magic bytes, never trusted from a file name.
A layer's identity is its diff_id, the sha256 of the *uncompressed* tar,
and its size as Docker reports it is the total size of its regular files.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, cast

import zstandard

from engine.images import media_types
from engine.images.errors import InvalidArchive

MEDIA_TYPE_LAYER = media_types.OCI_LAYER

_MAGIC = (
    (b"\x1f\x8b\x08", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_CHUNK = 1 << 20


def detect_compression(head: bytes) -> str:
    """'gzip' | 'zstd' | 'bzip2' | 'xz' | 'none' from the first bytes of a blob."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def oci_media_type(compression: str) -> str:
    """The OCI layer media type for a compression we can store as-is."""
    by_compression = {"gzip": media_types.OCI_LAYER_GZIP, "zstd": media_types.OCI_LAYER_ZSTD}
    return by_compression.get(compression, media_types.OCI_LAYER)


@contextmanager
def open_uncompressed(raw: BinaryIO) -> Iterator[BinaryIO]:
    """A reader of `raw`'s uncompressed bytes.  `raw` must be seekable to its start."""
    start = raw.tell()
    compression = detect_compression(raw.read(8))
    raw.seek(start)
    if compression == "gzip":
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            yield cast(BinaryIO, gz)
    elif compression == "zstd":
        with zstandard.ZstdDecompressor().stream_reader(raw, closefd=False) as zst:
            yield cast(BinaryIO, zst)
    elif compression == "bzip2":
        with bz2.BZ2File(raw, mode="rb") as bz:
            yield cast(BinaryIO, bz)
    elif compression == "xz":
        with lzma.LZMAFile(raw, mode="rb") as xz:
            yield cast(BinaryIO, xz)
    else:
        yield raw


class _HashingReader:
    """Hashes and counts every byte read through it (tarfile reads through this)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


@dataclass(frozen=True)
class LayerContent:
    diff_id: str
    unpacked_size: int
    compression: str


def describe_layer(raw: BinaryIO) -> LayerContent:
    """Read a (possibly compressed) layer once: its diff_id, file-size total, compression.

    A blob that does not decompress, is not a tar, or ends mid-member is an
    InvalidArchive: a layer that cannot be unpacked must not be recorded.
    """
    start = raw.tell()
    compression = detect_compression(raw.read(8))
    raw.seek(start)
    try:
        with open_uncompressed(raw) as plain:
            reader = _HashingReader(plain)
            unpacked = 0
            with tarfile.open(fileobj=cast(BinaryIO, reader), mode="r|") as tar:
                for member in tar:
                    if member.isreg():
                        unpacked += member.size
            reader.drain()
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError, lzma.LZMAError) as err:
        raise InvalidArchive(f"layer is not a readable {compression} tar: {err}") from err
    return LayerContent("sha256:" + reader.hash.hexdigest(), unpacked, compression)

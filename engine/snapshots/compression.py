"""Open a layer blob as an uncompressed tar stream, hashing it on the way.

OCI image-spec layer.md: a layer is a tar, optionally gzip- or zstd-compressed
(media types ``...tar``, ``...tar+gzip``, ``...tar+zstd``; Docker's schema2
``...rootfs.diff.tar.gzip`` is gzip too).  The DiffID is the sha256 of the
*uncompressed* tar (image-spec config.md "rootfs.diff_ids"), so the hash is
taken after decompression, while the tar is being read.
"""

from __future__ import annotations

import enum
import gzip
import hashlib
import io
import zlib
from typing import IO, BinaryIO

import zstandard

from engine.snapshots.errors import LayerError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def compression_of_media_type(media_type: str) -> Compression:
    """The compression a layer media type declares (OCI and Docker schema2 names)."""
    if media_type.endswith(("+gzip", ".tar.gzip")):
        return Compression.GZIP
    if media_type.endswith(("+zstd", ".tar.zstd")):
        return Compression.ZSTD
    if media_type.endswith((".tar", "tar")):
        return Compression.NONE
    raise LayerError(f"unsupported layer media type {media_type!r}")


def detect(head: bytes) -> Compression:
    """Compression from the first bytes of a blob; anything else is taken as a plain tar."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


class HashingReader(io.RawIOBase):
    """A read-only stream that feeds every byte it returns into a sha256 and counts them."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self._sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._inner.read(n)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            # Truncated or corrupt compressed data surfaces here, mid-extraction.
            raise LayerError(f"cannot decompress layer: {exc}") from exc
        self._sha.update(data)
        self.size += len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read to the end: tar's end-of-archive padding belongs to the DiffID too."""
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


class _Prefixed(io.RawIOBase):
    """Give back the bytes peeked for magic detection, then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def open_uncompressed(blob: IO[bytes], media_type: str | None = None) -> tuple[HashingReader, Compression]:
    """The uncompressed tar stream of ``blob`` (hashing as it is read) and its compression.

    With ``media_type`` the declared compression must match the magic bytes: a
    mislabelled blob is refused rather than guessed at.
    """
    head = blob.read(4)
    found = detect(head)
    if media_type is not None:
        declared = compression_of_media_type(media_type)
        if declared is not found:
            raise LayerError(f"layer declared {declared.value} ({media_type}) but its bytes are {found.value}")
    raw = io.BufferedReader(_Prefixed(head, blob), 1 << 16)
    stream: BinaryIO
    if found is Compression.GZIP:
        stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif found is Compression.ZSTD:
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    else:
        stream = raw  # type: ignore[assignment]
    return HashingReader(stream), found

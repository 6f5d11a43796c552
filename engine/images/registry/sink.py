"""What the registry client needs from a content store, as structural protocols.

engine.images.content_store.ContentStore satisfies BlobSink; anything that can open
a blob by digest satisfies BlobSource.  Keeping the client on these protocols keeps
the dependency arrow pointing from the store's users to the store, not back.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol


class BlobWriter(Protocol):
    """An ingest of one blob; `offset` is what an earlier, interrupted ingest left."""

    @property
    def offset(self) -> int: ...

    def write(self, data: bytes) -> object: ...

    def commit(self) -> object: ...


class BlobSink(Protocol):
    """Where pulled blobs go: `has` to skip what exists, `writer` to ingest.

    `commit()` must verify size and digest and raise a DigestMismatch (of
    engine.images.errors) on failure, discarding the ingest: the puller relies on it
    when it resumes a partial whose head it has not hashed itself.  `writer()` may
    block while another writer ingests the same digest, so it is opened in a thread;
    if that other writer committed the blob meanwhile, `has()` turns true and
    `commit()` with nothing written just closes the writer.
    """

    def has(self, digest: str) -> bool: ...

    def writer(self, digest: str, expected_size: int) -> AbstractContextManager[BlobWriter]: ...


class BlobSource(Protocol):
    """Where pushed blobs come from (ContentStore.open has this shape)."""

    def open(self, digest: str) -> BinaryIO: ...

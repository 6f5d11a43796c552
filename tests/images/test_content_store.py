"""The content store: verified, atomic, resumable, concurrent-safe blob storage."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from engine.images.content_store import BlobLocked, ContentStore
from engine.images.digests import sha256_digest
from engine.images.errors import DigestMismatch, NotFound


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> ContentStore:
    return ContentStore(tmp_path_factory.mktemp("berthtest-content"))


def _visible_files(store: ContentStore) -> list[str]:
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())


def test_put_then_read_back_by_digest(store: ContentStore) -> None:
    digest = store.put(b"hello")
    assert digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.has(digest)
    assert store.read(digest) == b"hello"
    assert store.size(digest) == 5
    assert store.path(digest) == store.root / "blobs" / "sha256" / digest[7:]
    assert list(store.walk()) == [digest]
    # Committed blobs are read-only, like containerd's.
    assert store.path(digest).stat().st_mode & 0o222 == 0


def test_missing_blob_is_not_found(store: ContentStore) -> None:
    with pytest.raises(NotFound):
        store.read(sha256_digest(b"nope"))
    assert store.delete(sha256_digest(b"nope")) is False


def test_digest_mismatch_leaves_nothing_visible(store: ContentStore) -> None:
    with pytest.raises(DigestMismatch), store.writer(sha256_digest(b"expected")) as writer:
        writer.write(b"something else")
    assert list(store.walk()) == []
    assert _visible_files(store) == []


def test_size_mismatch_is_rejected(store: ContentStore) -> None:
    data = b"0123456789"
    with pytest.raises(DigestMismatch, match="size"), store.writer(sha256_digest(data), 11) as writer:
        writer.write(data)
    with pytest.raises(DigestMismatch, match="longer"), store.writer(None, 4) as writer:
        writer.write(data)
    assert _visible_files(store) == []


def test_interrupted_ingest_resumes_from_offset(store: ContentStore) -> None:
    data = os.urandom(300_000)
    digest = sha256_digest(data)
    with pytest.raises(ConnectionError), store.writer(digest, len(data)) as writer:
        writer.write(data[:123_456])
        raise ConnectionError("download dropped")
    assert not store.has(digest)
    with store.writer(digest, len(data)) as writer:
        assert writer.offset == 123_456
        writer.write(data[writer.offset :])
    assert store.read(digest) == data
    assert _visible_files(store) == ["blobs/sha256/" + digest[7:]]


def test_interrupted_ingest_without_digest_is_discarded(store: ContentStore) -> None:
    with pytest.raises(ConnectionError), store.writer() as writer:
        writer.write(b"partial")
        raise ConnectionError
    assert _visible_files(store) == []


def test_writer_of_existing_blob_reports_exists(store: ContentStore) -> None:
    digest = store.put(b"abc")
    with store.writer(digest) as writer:
        assert writer.exists
        writer.write(b"ignored")
    assert writer.committed_digest == digest
    assert store.read(digest) == b"abc"
    assert _visible_files(store) == ["blobs/sha256/" + digest[7:]]


def test_gc_removes_only_unreferenced(store: ContentStore) -> None:
    kept = store.put(b"kept")
    dropped = store.put(b"dropped")
    assert store.gc({kept}) == [dropped]
    assert store.has(kept)
    assert not store.has(dropped)


def test_non_waiting_writer_sees_lock(store: ContentStore) -> None:
    digest = sha256_digest(b"x")
    with store.writer(digest) as first:
        with pytest.raises(BlobLocked):
            store.writer(digest, wait=False)
        first.write(b"x")
    assert store.read(digest) == b"x"


def test_concurrent_writers_of_same_blob(store: ContentStore) -> None:
    data = os.urandom(1 << 20)
    digest = sha256_digest(data)
    start = threading.Barrier(8)
    errors: list[BaseException] = []
    skipped: list[bool] = []

    def download() -> None:
        try:
            start.wait()
            with store.writer(digest, len(data)) as writer:
                skipped.append(writer.exists)
                for offset in range(writer.offset, len(data), 65536):
                    writer.write(data[offset : offset + 65536])
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=download) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.read(digest) == data
    # Exactly one writer did the work; the others found the blob committed.
    assert skipped.count(False) == 1
    assert _visible_files(store) == ["blobs/sha256/" + digest[7:]]


def test_path_rejects_non_digests(store: ContentStore, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="digest"):
        store.path("sha256:../../etc/passwd")


def test_async_writers_never_starve_a_small_thread_pool(store: ContentStore) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(200_000)
    digest = sha256_digest(data)

    async def download() -> bool:
        writer = await store.open_writer(digest, len(data))
        with writer:
            if writer.exists:
                return False
            for offset in range(writer.offset, len(data), 50_000):
                writer.write(data[offset : offset + 50_000])
                await asyncio.sleep(0)  # let the other coroutines try the lock
            await asyncio.to_thread(writer.commit)
        return True

    async def main() -> list[bool]:
        # One worker thread: a writer blocked on the lock in it would deadlock.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        return list(await asyncio.gather(*(download() for _ in range(8))))

    did_work = asyncio.run(main())
    assert did_work.count(True) == 1
    assert store.read(digest) == data
    assert _visible_files(store) == ["blobs/sha256/" + digest[7:]]

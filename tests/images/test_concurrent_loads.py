"""Loads racing each other and the garbage collector never lose or half-record an image."""

from __future__ import annotations

import threading
from pathlib import Path

from engine.images.archive_load import load
from engine.images.image_store import ImageStore

from .archive_factory import docker_save_members, write_tar
from .image_factory import layer_tar


def test_parallel_loads_of_shared_layers_with_gc_running(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "berthtest-data")
    base = layer_tar({"base": bytes(300_000)})
    archives = []
    for index in range(4):
        members, _ = docker_save_members([base, layer_tar({f"f{index}": b"x" * index})], [f"app:{index}"])
        archives.append(write_tar(tmp_path / f"a{index}.tar", members))
    errors: list[BaseException] = []
    loads_done = threading.Event()
    start = threading.Barrier(len(archives) * 2 + 1)

    def loader(archive: Path) -> None:
        try:
            start.wait()
            load(store, archive)
        except BaseException as err:
            errors.append(err)

    def collector() -> None:
        start.wait()
        while not loads_done.is_set():
            store.gc()

    threads = [threading.Thread(target=loader, args=(a,)) for a in archives * 2]
    gc_thread = threading.Thread(target=collector)
    for thread in [*threads, gc_thread]:
        thread.start()
    for thread in threads:
        thread.join()
    loads_done.set()
    gc_thread.join()
    try:
        assert errors == []
        assert sorted(t.familiar() for r in store.list() for t in r.tags) == [f"app:{i}" for i in range(4)]
        for record in store.list():
            for blob in [record.id, *(layer.blob_digest for layer in record.layers)]:
                assert store.content.has(blob)
        assert store.gc() == []
    finally:
        store.close()

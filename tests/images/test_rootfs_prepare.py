"""From a loaded image to a mounted container rootfs through H8's overlay snapshotter."""

from __future__ import annotations

import gzip
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images.archive_load import load
from engine.images.image_store import ImageStore
from engine.images.rootfs_prepare import prepare_rootfs, unpack_image
from engine.snapshots.mounts import mount, unmount, unmount_all_under
from engine.snapshots.overlay import OverlaySnapshotter

from .archive_factory import docker_save_members, write_tar
from .image_factory import layer_tar

pytestmark = pytest.mark.needs_root


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="berthtest-", dir=tmp_path))
    try:
        yield path
    finally:
        unmount_all_under(path)
        shutil.rmtree(path)


def test_loaded_image_becomes_a_writable_rootfs(work: Path) -> None:
    store = ImageStore(work / "data")
    snapshotter = OverlaySnapshotter(work / "snapshots")
    try:
        base = layer_tar({"etc/hostname": b"base\n", "bin/tool": b"v1"})
        top = layer_tar({"bin/tool": b"v2"})
        members, _ = docker_save_members([base, top], ["app:1"])
        # A compressed layer, as a pulled image has: the snapshotter gets the media type.
        members = [(n, gzip.compress(d) if n == "layer1/layer.tar" else d) for n, d in members]  # type: ignore[arg-type]
        load(store, write_tar(work / "app.tar", members))
        rootfs = work / "rootfs"
        rootfs.mkdir()
        mount(prepare_rootfs(store, snapshotter, "app:1", "container-1"), rootfs)
        try:
            assert (rootfs / "etc/hostname").read_bytes() == b"base\n"
            assert (rootfs / "bin/tool").read_bytes() == b"v2"
            (rootfs / "new").write_bytes(b"written by the container")
        finally:
            unmount(rootfs)
        # Unpacking again reuses the committed snapshots.
        before = {info.name for info in snapshotter.walk()}
        assert unpack_image(store, snapshotter, "app:1") in before
        assert {info.name for info in snapshotter.walk()} == before
    finally:
        snapshotter.close()
        store.close()

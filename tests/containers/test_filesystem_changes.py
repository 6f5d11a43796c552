"""`docker diff` from a container's snapshot: the same answer on the overlay and the native snapshotter."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.containers.filesystem import snapshot_changes
from engine.snapshots.mounts import mount, unmount, unmount_all_under
from engine.snapshots.native import NativeSnapshotter
from engine.snapshots.overlay import OverlaySnapshotter
from engine.snapshots.snapshotter import Snapshotter
from engine.snapshots.unpack import LayerSource, unpack
from tests.snapshots.helpers import TarBuilder

pytestmark = pytest.mark.needs_root


@pytest.fixture(params=["overlay", "native"])
def snapshotter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Snapshotter]:
    work = Path(tempfile.mkdtemp(prefix="berthtest-", dir=tmp_path))
    sn: Snapshotter = (OverlaySnapshotter if request.param == "overlay" else NativeSnapshotter)(work / "root")
    try:
        yield sn
    finally:
        sn.close()
        unmount_all_under(work)
        shutil.rmtree(work)


def test_changes_agree_on_every_snapshotter(snapshotter: Snapshotter, tmp_path: Path) -> None:
    data = (TarBuilder().dir("etc").file("etc/passwd", b"root:x:0:0\n").file("etc/group", b"root:x:0:\n")
            .dir("bin").file("bin/sh", b"#!").dir("keep").file("keep/x", b"x").build())
    top = unpack(snapshotter, [LayerSource(open=lambda: io.BytesIO(data),
                                           diff_id="sha256:" + hashlib.sha256(data).hexdigest())])
    mounts = snapshotter.prepare("container-x", top)
    assert snapshot_changes(snapshotter, "container-x") == []
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    mount(mounts, rootfs)
    try:
        (rootfs / "etc" / "group").unlink()
        with open(rootfs / "etc" / "passwd", "a") as f:
            f.write("#\n")
        (rootfs / "newdir").mkdir()
        (rootfs / "newdir" / "file").write_text("new")
        (rootfs / "etc" / "hosts").write_text("made by the runtime: never listed")
        shutil.rmtree(rootfs / "keep")
    finally:
        unmount(rootfs)
    found = [(c.kind, c.path) for c in snapshot_changes(snapshotter, "container-x")]
    assert found == [(0, "/etc"), (2, "/etc/group"), (0, "/etc/passwd"), (2, "/keep"), (1, "/newdir"),
                     (1, "/newdir/file")]
    assert os.path.isdir(rootfs)


def test_a_layer_symlink_never_leads_the_lower_lookup_to_the_host(snapshotter: Snapshotter, tmp_path: Path) -> None:
    """A lower layer's `link -> /` hides the dirs of the layer below it, as in the overlay: a file the container
    then makes under a real `link/` directory is added, whatever the host has at that path (a lexical lookup
    followed the symlink on the host and called it modified)."""
    def layer(data: bytes) -> LayerSource:
        return LayerSource(open=lambda: io.BytesIO(data), diff_id="sha256:" + hashlib.sha256(data).hexdigest())

    assert Path("/etc/hostname").exists()  # what the lexical lookup found on the host
    first = TarBuilder().dir("link").dir("link/etc").file("link/etc/hostname", b"layer one\n").build()
    second = TarBuilder().symlink("link", "/").build()
    top = unpack(snapshotter, [layer(first), layer(second)])
    mounts = snapshotter.prepare("container-y", top)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    mount(mounts, rootfs)
    try:
        (rootfs / "link").unlink()  # the container's own symlink, not the host's root
        (rootfs / "link" / "etc").mkdir(parents=True)
        (rootfs / "link" / "etc" / "hostname").write_text("made in the container\n")
    finally:
        unmount(rootfs)
    found = {c.path: c.kind for c in snapshot_changes(snapshotter, "container-y")}
    assert found["/link/etc/hostname"] == 1  # added: under the symlink the lowers have no such file

"""diff_layer: an overlay upper dir becomes an OCI tar that reproduces the merged view when re-applied."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.snapshots.errors import LayerError
from engine.snapshots.layer_diff import diff_layer
from engine.snapshots.mounts import mount, unmount
from engine.snapshots.native import NativeSnapshotter
from engine.snapshots.overlay import OverlaySnapshotter
from engine.snapshots.unpack import LayerSource, unpack
from tests.snapshots.helpers import TarBuilder, tree_state

pytestmark = pytest.mark.needs_root


@pytest.fixture
def sn(work: Path) -> Iterator[OverlaySnapshotter]:
    s = OverlaySnapshotter(work / "root")
    yield s
    s.close()


def source(data: bytes) -> LayerSource:
    return LayerSource(open=lambda: io.BytesIO(data), diff_id="sha256:" + hashlib.sha256(data).hexdigest())


BASE = (
    TarBuilder()
    .file("a", b"a0").file("b", b"b0")
    .dir("d").file("d/x", b"x").file("d/y", b"y")
    .dir("keep").file("keep/k", b"k", mode=0o644).file("keep/untouched", b"u")
    .build()
)


def change_things(mnt: Path) -> None:
    (mnt / "a").write_bytes(b"a1")  # modify
    (mnt / "b").unlink()  # delete
    (mnt / "c").write_bytes(b"c1")  # add
    shutil.rmtree(mnt / "d")  # replace a directory: overlay makes the new one opaque
    (mnt / "d").mkdir()
    (mnt / "d" / "new").write_bytes(b"n")
    os.chmod(mnt / "keep" / "k", 0o4755)  # metadata-only change
    os.symlink("/keep/k", mnt / "s")
    (mnt / "h1").write_bytes(b"h")
    os.link(mnt / "h1", mnt / "h2")
    os.mkfifo(mnt / "p")
    os.setxattr(mnt / "c", "user.tag", b"\xff\x00bin")


@pytest.mark.parametrize("reapply_with", [OverlaySnapshotter, NativeSnapshotter])
def test_diff_then_reapply_reproduces_the_merged_view(
    work: Path, sn: OverlaySnapshotter, reapply_with: type[OverlaySnapshotter | NativeSnapshotter]
) -> None:
    base = unpack(sn, [source(BASE)])
    mounts = sn.prepare("ctr", base)
    mnt = work / "merged"
    mnt.mkdir()
    mount(mounts, mnt)
    try:
        change_things(mnt)
        merged = tree_state(mnt, with_times=False)
    finally:
        unmount(mnt)

    out = io.BytesIO()
    lowers, upper = sn.layer_dirs("ctr")
    assert (lowers, upper) == ([sn.fs_path(base)], sn.fs_path("ctr"))
    result = diff_layer(lowers, upper, out)
    data = out.getvalue()
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest() and result.size == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {
        "a", ".wh.b", "c", "d", "d/.wh..wh..opq", "d/new", "keep", "keep/k", "s", "h1", "h2", "p",
    }
    assert members["h2"].islnk() and members["h2"].linkname == "h1"
    assert members["s"].issym() and members["s"].linkname == "/keep/k"
    assert members["keep/k"].mode == 0o4755
    assert members["c"].pax_headers["SCHILY.xattr.user.tag"].encode("utf-8", "surrogateescape") == b"\xff\x00bin"
    assert not any("trusted.overlay" in k for m in members.values() for k in m.pax_headers)

    # A second, independent chain built from the base and the diff shows the same tree.
    sn2 = reapply_with(work / "root2")
    try:
        top = unpack(sn2, [source(BASE), source(data)])
        view = work / "view"
        view.mkdir()
        mount(sn2.view("v", top), view)
        try:
            assert tree_state(view, with_times=False) == merged
        finally:
            unmount(view)
    finally:
        sn2.close()


def test_diff_is_deterministic(work: Path, sn: OverlaySnapshotter) -> None:
    base = unpack(sn, [source(BASE)])
    mnt = work / "m"
    mnt.mkdir()
    mount(sn.prepare("ctr", base), mnt)
    try:
        change_things(mnt)
    finally:
        unmount(mnt)
    first, second = io.BytesIO(), io.BytesIO()
    r1 = diff_layer([sn.fs_path(base)], sn.fs_path("ctr"), first)
    r2 = diff_layer([sn.fs_path(base)], sn.fs_path("ctr"), second)
    assert first.getvalue() == second.getvalue() and r1 == r2


def test_whiteout_only_for_names_the_lowers_show(work: Path) -> None:
    lower_top, lower_bottom, upper = work / "l1", work / "l2", work / "u"
    for d in (lower_top, lower_bottom, upper):
        d.mkdir()
    (lower_bottom / "old").write_text("x")
    (lower_bottom / "gone").write_text("x")
    os.mknod(lower_top / "gone", 0o020000, os.makedev(0, 0))  # already deleted by lower_top
    for name in ("old", "gone", "never"):
        os.mknod(upper / name, 0o020000, os.makedev(0, 0))
    out = io.BytesIO()
    diff_layer([lower_top, lower_bottom], upper, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.getnames() == [".wh.old"]


def test_redirected_directory_is_refused(work: Path) -> None:
    upper = work / "u"
    (upper / "moved").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/orig")
    with pytest.raises(LayerError, match="redirect"):
        diff_layer([], upper, io.BytesIO())

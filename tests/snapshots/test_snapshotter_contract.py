"""The behaviour every Snapshotter must show (containerd's snapshots/testsuite, in small).

Each test runs against every implementation in IMPLEMENTATIONS through the
Snapshotter protocol only, reading and writing through real mounts.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.snapshots.errors import AlreadyExists, Conflict, InvalidParameter, LayerError, NotFound
from engine.snapshots.mounts import mount, unmount
from engine.snapshots.native import NativeSnapshotter
from engine.snapshots.overlay import OverlaySnapshotter
from engine.snapshots.snapshotter import Kind, Snapshotter
from engine.snapshots.unpack import LayerSource, unpack
from tests.snapshots.helpers import TarBuilder, tree_state

pytestmark = pytest.mark.needs_root

IMPLEMENTATIONS: dict[str, Callable[[Path], Snapshotter]] = {
    "overlay": OverlaySnapshotter,
    "native": NativeSnapshotter,
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def snapshotter(request: pytest.FixtureRequest, work: Path) -> Iterator[Snapshotter]:
    s = IMPLEMENTATIONS[request.param](work / "root")
    yield s
    s.close()


def layer(tb: TarBuilder) -> LayerSource:
    data = tb.build()
    return LayerSource(open=lambda: io.BytesIO(data), diff_id="sha256:" + hashlib.sha256(data).hexdigest())


def names(s: Snapshotter) -> list[str]:
    return [i.name for i in s.walk()]


def test_prepare_commit_view_remove_lifecycle(work: Path, snapshotter: Snapshotter) -> None:
    sn = snapshotter
    top = unpack(sn, [layer(TarBuilder().file("a", b"base"))])
    mounts = sn.prepare("work", top)
    with pytest.raises(AlreadyExists):
        sn.prepare("work", top)
    with pytest.raises(InvalidParameter):
        sn.prepare("child-of-active", "work")
    with pytest.raises(NotFound):
        sn.prepare("orphan", "no-such-parent")
    mnt = work / "rw"
    mnt.mkdir()
    mount(mounts, mnt)
    try:
        assert (mnt / "a").read_bytes() == b"base"
        (mnt / "a").write_bytes(b"changed")
        (mnt / "b").write_bytes(b"new")
    finally:
        unmount(mnt)
    assert sn.mounts("work") == mounts
    assert sn.stat("work").kind is Kind.ACTIVE
    assert sn.usage("work").inodes >= 2
    sn.commit("layer2", "work")
    with pytest.raises(NotFound):
        sn.stat("work")
    info = sn.stat("layer2")
    assert (info.kind, info.parent) == (Kind.COMMITTED, top)
    assert sn.usage("layer2").inodes == 2

    view_mounts = sn.view("ro", "layer2")
    assert sn.stat("ro").kind is Kind.VIEW
    with pytest.raises(InvalidParameter):
        sn.commit("nope", "ro")
    mnt2 = work / "ro"
    mnt2.mkdir()
    mount(view_mounts, mnt2)
    try:
        assert (mnt2 / "a").read_bytes() == b"changed"
        assert (mnt2 / "b").read_bytes() == b"new"
        with pytest.raises(OSError):
            (mnt2 / "c").write_bytes(b"x")
    finally:
        unmount(mnt2)

    with pytest.raises(Conflict):
        sn.remove("layer2")  # the view still sits on it
    sn.remove("ro")
    sn.remove("layer2")
    sn.remove(top)
    with pytest.raises(NotFound):
        sn.remove(top)
    assert names(sn) == []


def test_labels_update_and_walk_order(snapshotter: Snapshotter) -> None:
    sn = snapshotter
    sn.prepare("first", labels={"a": "1"})
    sn.commit("base", "first", labels={"b": "2"})
    sn.prepare("second", "base")
    assert sn.stat("base").labels == {"b": "2"}
    assert sn.update("second", {"c": "3"}).labels == {"c": "3"}
    assert names(sn) == ["base", "second"]
    with pytest.raises(NotFound):
        sn.update("nothing", {})


def test_snapshot_without_parent_is_writable_and_can_become_a_base(work: Path, snapshotter: Snapshotter) -> None:
    sn = snapshotter
    mnt = work / "m"
    mnt.mkdir()
    mount(sn.prepare("scratch"), mnt)
    try:
        (mnt / "hello").write_text("hi")
    finally:
        unmount(mnt)
    sn.commit("base", "scratch")
    assert sn.usage("base").inodes == 1
    mount(sn.prepare("child", "base"), mnt)
    try:
        assert (mnt / "hello").read_text() == "hi"
    finally:
        unmount(mnt)


def test_images_with_a_common_base_share_its_snapshots(snapshotter: Snapshotter) -> None:
    sn = snapshotter
    base = [layer(TarBuilder().file("os-release", b"debian")), layer(TarBuilder().file("usr-lib", b"libc"))]
    img1 = unpack(sn, [*base, layer(TarBuilder().file("app1", b"1"))])
    before = set(names(sn))
    img2 = unpack(sn, [*base, layer(TarBuilder().file("app2", b"2"))])
    after = set(names(sn))
    assert img1 != img2
    assert after - before == {img2}  # only the one new layer was unpacked
    assert sn.stat(img1).parent == sn.stat(img2).parent
    assert unpack(sn, [*base, layer(TarBuilder().file("app2", b"2"))]) == img2  # again: nothing to do
    assert set(names(sn)) == after


def test_failed_unpack_leaves_no_snapshot(snapshotter: Snapshotter) -> None:
    bad = LayerSource(open=lambda: io.BytesIO(TarBuilder().file("../x").build()), diff_id="sha256:" + "0" * 64)
    with pytest.raises(LayerError, match="climbs out"):
        unpack(snapshotter, [bad])
    good = layer(TarBuilder().file("x"))
    lying = LayerSource(open=good.open, diff_id="sha256:" + "1" * 64)
    with pytest.raises(LayerError, match="DiffID"):
        unpack(snapshotter, [lying])
    assert names(snapshotter) == []


def test_concurrent_unpack_of_the_same_layer_keeps_one_snapshot(snapshotter: Snapshotter) -> None:
    """Another unpacker commits the layer while ours is extracting it: ours yields to it."""
    sn = snapshotter
    data = TarBuilder().file("a", b"x").build()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    rival_done: list[str] = []

    def open_and_let_the_rival_win() -> io.BytesIO:
        if not rival_done:
            rival_done.append(unpack(sn, [LayerSource(open=lambda: io.BytesIO(data), diff_id=diff_id)]))
        return io.BytesIO(data)

    assert unpack(sn, [LayerSource(open=open_and_let_the_rival_win, diff_id=diff_id)]) == diff_id
    assert rival_done == [diff_id]
    assert names(sn) == [diff_id]


def test_three_layers_whiteouts_and_opaque_dirs_hide_lower_content(work: Path, snapshotter: Snapshotter) -> None:
    base = TarBuilder().dir("etc").file("etc/keep", b"keep").file("etc/gone", b"gone").dir("opq").file(
        "opq/old1", b"1").dir("opq/olddir").file("opq/olddir/x", b"x")
    mid = TarBuilder().file("etc/.wh.gone").file("mid", b"mid").file("opq/old2", b"2")
    top = TarBuilder().dir("opq").file("opq/.wh..wh..opq").file("opq/new", b"new").file(".wh.mid")
    top_chain = unpack(snapshotter, [layer(base), layer(mid), layer(top)])
    mnt = work / "merged"
    mnt.mkdir()
    mount(snapshotter.view("v", top_chain), mnt)
    try:
        assert (mnt / "etc/keep").read_bytes() == b"keep"
        assert not (mnt / "etc/gone").exists()
        assert not (mnt / "mid").exists()
        assert sorted(os.listdir(mnt / "opq")) == ["new"]
        assert sorted(os.listdir(mnt)) == ["etc", "opq"]
    finally:
        unmount(mnt)


def test_same_layer_whiteouts_follow_the_spec(work: Path, snapshotter: Snapshotter) -> None:
    """layer.md: whiteouts hide lower layers only; a directory brought after its own whiteout
    replaces the lower one; an opaque marker after new children keeps them."""
    base = TarBuilder().dir("d").file("d/old", b"old").dir("e").file("e/old", b"old").dir("f").file("f/old", b"o")
    top = (
        TarBuilder()
        .file(".wh.d").file("d/new", b"new")
        .file(".wh.e").dir("e").file("e/new2", b"new")
        .file("f/mine", b"m").file("f/.wh..wh..opq")
        .file("g", b"g").file(".wh.g")
    )
    chain = unpack(snapshotter, [layer(base), layer(top)])
    mnt = work / "m"
    mnt.mkdir()
    mount(snapshotter.view("v", chain), mnt)
    try:
        assert os.listdir(mnt / "d") == ["new"]
        assert os.listdir(mnt / "e") == ["new2"]
        assert os.listdir(mnt / "f") == ["mine"]
        assert (mnt / "g").read_bytes() == b"g"
    finally:
        unmount(mnt)


def test_layer_metadata_survives_the_chain(work: Path, snapshotter: Snapshotter) -> None:
    cap = bytes.fromhex("0100000200040000" + "00" * 12)
    base = TarBuilder().dir("bin").file("bin/su", b"su", mode=0o4755).file(
        "bin/ping", b"p", xattrs={"security.capability": cap}).hardlink("bin/su2", "bin/su")
    top = TarBuilder().file("other", b"x")
    chain = unpack(snapshotter, [layer(base), layer(top)])
    mnt = work / "m"
    mnt.mkdir()
    mount(snapshotter.view("v", chain), mnt)
    try:
        assert os.stat(mnt / "bin/su").st_mode & 0o7777 == 0o4755
        assert os.stat(mnt / "bin/su").st_ino == os.stat(mnt / "bin/su2").st_ino
        assert os.getxattr(mnt / "bin/ping", "security.capability") == cap
    finally:
        unmount(mnt)


def test_diff_reapplied_on_the_parent_reproduces_the_snapshot(work: Path, snapshotter: Snapshotter) -> None:
    """The layer `docker commit` would store: re-applied over the same parent, it gives the same tree."""
    sn = snapshotter
    base_tar = (
        TarBuilder().file("a", b"a0").file("b", b"b0").dir("d").file("d/x", b"x").dir("keep")
        .file("keep/k", b"k").file("keep/same", b"s").build()
    )
    base = unpack(sn, [LayerSource(open=lambda: io.BytesIO(base_tar),
                                   diff_id="sha256:" + hashlib.sha256(base_tar).hexdigest())])
    mnt = work / "m"
    mnt.mkdir()
    mount(sn.prepare("ctr", base), mnt)
    try:
        (mnt / "a").write_bytes(b"a1")
        (mnt / "b").unlink()
        shutil.rmtree(mnt / "d")
        (mnt / "d").mkdir()
        (mnt / "d" / "new").write_bytes(b"n")
        os.chmod(mnt / "keep" / "k", 0o4755)
        os.symlink("/keep/k", mnt / "s")
        os.mkfifo(mnt / "p")
        merged = tree_state(mnt, with_times=False)
    finally:
        unmount(mnt)
    out = io.BytesIO()
    result = sn.diff("ctr", out)
    data = out.getvalue()
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        listed = set(tar.getnames())
    assert {"a", ".wh.b", "d/new", "keep/k", "s", "p"} <= listed
    assert "keep/same" not in listed and "c" not in listed

    again = unpack(sn, [
        LayerSource(open=lambda: io.BytesIO(base_tar), diff_id="sha256:" + hashlib.sha256(base_tar).hexdigest()),
        LayerSource(open=lambda: io.BytesIO(data), diff_id=result.diff_id),
    ])
    mount(sn.view("check", again), mnt)
    try:
        assert tree_state(mnt, with_times=False) == merged
    finally:
        unmount(mnt)
    second = io.BytesIO()
    assert sn.diff("ctr", second) == result and second.getvalue() == data  # deterministic

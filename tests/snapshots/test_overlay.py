"""The overlay snapshotter: lifecycle, layer sharing, whiteouts through a real overlay mount, many layers."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime import syscalls
from engine.snapshots.errors import AlreadyExists, Conflict, InvalidParameter, NotFound
from engine.snapshots.mounts import MAX_MOUNT_DATA, is_mounted, mount, unmount
from engine.snapshots.overlay import OverlaySnapshotter
from engine.snapshots.snapshotter import Kind
from engine.snapshots.unpack import LayerSource, chain_ids, unpack
from tests.snapshots.helpers import TarBuilder

pytestmark = pytest.mark.needs_root


@pytest.fixture
def sn(work: Path) -> Iterator[OverlaySnapshotter]:
    s = OverlaySnapshotter(work / "root")
    yield s
    s.close()


def layer(tb: TarBuilder) -> LayerSource:
    data = tb.build()
    return LayerSource(open=lambda: io.BytesIO(data), diff_id="sha256:" + hashlib.sha256(data).hexdigest())


def mounted_dir(work: Path, name: str) -> Path:
    d = work / name
    d.mkdir()
    return d


def test_chain_id_follows_the_image_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b])[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


def test_three_layers_whiteouts_and_opaque_dirs_hide_lower_content(work: Path, sn: OverlaySnapshotter) -> None:
    base = TarBuilder().dir("etc").file("etc/keep", b"keep").file("etc/gone", b"gone").dir("opq").file(
        "opq/old1", b"1").dir("opq/olddir").file("opq/olddir/x", b"x")
    mid = TarBuilder().file("etc/.wh.gone").file("mid", b"mid").file("opq/old2", b"2")
    top = TarBuilder().dir("opq").file("opq/.wh..wh..opq").file("opq/new", b"new").file(".wh.mid")
    top_chain = unpack(sn, [layer(base), layer(mid), layer(top)])
    mnt = mounted_dir(work, "merged")
    mount(sn.view("v", top_chain), mnt)
    try:
        assert (mnt / "etc/keep").read_bytes() == b"keep"
        assert not (mnt / "etc/gone").exists()
        assert not (mnt / "mid").exists()
        assert sorted(os.listdir(mnt / "opq")) == ["new"]
        assert sorted(os.listdir(mnt)) == ["etc", "opq"]
    finally:
        unmount(mnt)
    assert not is_mounted(mnt)


def test_prepare_commit_view_remove_lifecycle(work: Path, sn: OverlaySnapshotter) -> None:
    top = unpack(sn, [layer(TarBuilder().file("a", b"base"))])
    mounts = sn.prepare("work", top)
    assert mounts[0].type == "overlay"
    with pytest.raises(AlreadyExists):
        sn.prepare("work", top)
    with pytest.raises(InvalidParameter):
        sn.prepare("child-of-active", "work")
    mnt = mounted_dir(work, "rw")
    mount(mounts, mnt)
    try:
        (mnt / "a").write_bytes(b"changed")
        (mnt / "b").write_bytes(b"new")
    finally:
        unmount(mnt)
    assert sn.stat("work").kind is Kind.ACTIVE
    assert sn.usage("work").inodes >= 2
    sn.commit("layer2", "work")
    with pytest.raises(NotFound):
        sn.stat("work")
    info = sn.stat("layer2")
    assert (info.kind, info.parent) == (Kind.COMMITTED, top)
    assert sn.usage("layer2").inodes == 2
    with pytest.raises(InvalidParameter):
        sn.mounts("layer2")

    view_mounts = sn.view("ro", "layer2")
    with pytest.raises(InvalidParameter):
        sn.commit("nope", "ro")
    mnt2 = mounted_dir(work, "ro")
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
    assert list(sn.walk()) == []
    assert os.listdir(sn.root / "snapshots") == []


def test_single_layer_view_is_a_read_only_bind(work: Path, sn: OverlaySnapshotter) -> None:
    top = unpack(sn, [layer(TarBuilder().file("a", b"x"))])
    mounts = sn.view("v", top)
    assert mounts[0].type == "bind" and "ro" in mounts[0].options
    mnt = mounted_dir(work, "v")
    mount(mounts, mnt)
    try:
        assert (mnt / "a").read_bytes() == b"x"
        with pytest.raises(OSError):
            (mnt / "b").write_bytes(b"x")
    finally:
        unmount(mnt)


def test_images_with_a_common_base_share_its_snapshots(sn: OverlaySnapshotter) -> None:
    base = [layer(TarBuilder().file("os-release", b"debian")), layer(TarBuilder().file("usr-lib", b"libc"))]
    img1 = unpack(sn, [*base, layer(TarBuilder().file("app1", b"1"))])
    before = {i.name for i in sn.walk()}
    img2 = unpack(sn, [*base, layer(TarBuilder().file("app2", b"2"))])
    after = {i.name for i in sn.walk()}
    assert img1 != img2
    assert after - before == {img2}  # only the one new layer was unpacked
    assert sn.stat(img1).parent == sn.stat(img2).parent
    # unpacking the same image again does nothing
    assert unpack(sn, [*base, layer(TarBuilder().file("app2", b"2"))]) == img2
    assert {i.name for i in sn.walk()} == after


def test_failed_unpack_leaves_no_snapshot(sn: OverlaySnapshotter) -> None:
    bad = LayerSource(open=lambda: io.BytesIO(TarBuilder().file("../x").build()), diff_id="sha256:" + "0" * 64)
    with pytest.raises(Exception, match="climbs out"):
        unpack(sn, [bad])
    assert list(sn.walk()) == []
    assert os.listdir(sn.root / "snapshots") == []


def test_state_survives_reopen_and_orphans_are_cleaned(work: Path) -> None:
    s1 = OverlaySnapshotter(work / "root")
    top = unpack(s1, [layer(TarBuilder().file("a", b"x"))])
    s1.prepare("active", top, labels={"l": "v"})
    with pytest.raises(Conflict):
        OverlaySnapshotter(work / "root")  # one owner at a time
    s1.close()
    (work / "root" / "snapshots" / "999" / "fs").mkdir(parents=True)  # as a crash would leave it
    s2 = OverlaySnapshotter(work / "root")
    try:
        assert sn_names(s2) == {top, "active"}
        assert s2.stat("active").labels == {"l": "v"}
        assert not (work / "root" / "snapshots" / "999").exists()
        assert s2.update("active", {"l": "w"}).labels == {"l": "w"}
    finally:
        s2.close()


def sn_names(s: OverlaySnapshotter) -> set[str]:
    return {i.name for i in s.walk()}


@pytest.mark.parametrize("method", ["fsopen", "legacy"])
def test_eighty_layer_chain_mounts(work: Path, method: str, caplog: pytest.LogCaptureFixture) -> None:
    # A long root makes the absolute options overflow mount(2)'s 4096-byte page.
    sn = OverlaySnapshotter(work / ("deep-" * 20) / "root")
    try:
        layers = [layer(TarBuilder().file(f"f{i:03}", str(i).encode()).file("top", str(i).encode())) for i in range(80)]
        top = unpack(sn, layers)
        mounts = sn.prepare("c", top)
        assert len(",".join(mounts[0].options)) > MAX_MOUNT_DATA
        lowerdir = next(o for o in mounts[0].options if o.startswith("lowerdir="))
        assert lowerdir.count(":") == 79
        mnt = mounted_dir(work, "m")
        with pytest.raises(OSError):  # the problem is real: plain mount(2) with absolute paths fails
            syscalls.mount("overlay", str(mnt), "overlay", 0, ",".join(mounts[0].options))
        with caplog.at_level("INFO", logger="engine.snapshots.mounts"):
            mount(mounts, mnt, method=method)
        assert ("paths relative to" in caplog.text) == (method == "legacy")
        try:
            assert len(os.listdir(mnt)) == 81
            assert (mnt / "f000").read_bytes() == b"0"
            assert (mnt / "top").read_bytes() == b"79"
            (mnt / "f000").write_bytes(b"copied up")
        finally:
            unmount(mnt)
        assert (sn.fs_path("c") / "f000").read_bytes() == b"copied up"
        assert os.getcwd() != str(sn.root / "snapshots")  # the relative-path mount did not move our cwd
    finally:
        sn.close()


def test_directory_after_its_own_whiteout_replaces_the_lower_one(work: Path, sn: OverlaySnapshotter) -> None:
    base = TarBuilder().dir("d").file("d/old", b"old").dir("e").file("e/old", b"old")
    top = TarBuilder().file(".wh.d").file("d/new", b"new").file(".wh.e").dir("e").file("e/new2", b"new")
    chain = unpack(sn, [layer(base), layer(top)])
    mnt = mounted_dir(work, "m")
    mount(sn.view("v", chain), mnt)
    try:
        assert os.listdir(mnt / "d") == ["new"]
        assert os.listdir(mnt / "e") == ["new2"]
    finally:
        unmount(mnt)


def test_snapshot_without_parent_is_a_writable_bind(work: Path, sn: OverlaySnapshotter) -> None:
    mounts = sn.prepare("scratch")
    assert mounts[0].type == "bind" and "rw" in mounts[0].options
    mnt = mounted_dir(work, "m")
    mount(mounts, mnt)
    try:
        (mnt / "hello").write_text("hi")
    finally:
        unmount(mnt)
    sn.commit("base", "scratch")
    assert [i.name for i in sn.walk()] == ["base"]
    assert sn.usage("base").inodes == 1
    child = sn.prepare("child", "base")
    assert child[0].type == "overlay"
    assert [i.name for i in sn.walk()] == ["base", "child"]


def test_mount_errors_are_clear(work: Path, sn: OverlaySnapshotter) -> None:
    from engine.snapshots.errors import MountError
    from engine.snapshots.mounts import Mount

    bad = Mount("overlay", "overlay", ("lowerdir=/nonexistent-berthtest-a:/nonexistent-berthtest-b",))
    mnt = mounted_dir(work, "m")
    with pytest.raises(MountError, match="overlay on"):
        mount([bad], mnt)
    with pytest.raises(MountError):
        unmount(mnt)  # not mounted


def test_concurrent_unpack_of_the_same_layer_keeps_one_snapshot(sn: OverlaySnapshotter) -> None:
    """Another unpacker commits the layer while ours is extracting it: ours yields to it."""
    data = TarBuilder().file("a", b"x").build()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    rival_done: list[str] = []

    def open_and_let_the_rival_win() -> io.BytesIO:
        if not rival_done:
            rival_done.append(unpack(sn, [LayerSource(open=lambda: io.BytesIO(data), diff_id=diff_id)]))
        return io.BytesIO(data)

    # Our unpack sees no snapshot, prepares, then (inside open) the rival commits first.
    assert unpack(sn, [LayerSource(open=open_and_let_the_rival_win, diff_id=diff_id)]) == diff_id
    assert rival_done == [diff_id]
    assert [i.name for i in sn.walk()] == [diff_id]
    assert len(os.listdir(sn.root / "snapshots")) == 1

"""What is specific to the overlay snapshotter: whiteouts through a real overlay mount, many layers,
on-disk layout and crash cleanup.  The generic behaviour is in test_snapshotter_contract.py."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime import syscalls
from engine.snapshots.errors import Conflict, MountError, SnapshotError
from engine.snapshots.mounts import MAX_MOUNT_DATA, Mount, is_mounted, mount, unmount, unmount_all_under
from engine.snapshots.overlay import OverlaySnapshotter
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


def test_state_survives_reopen_and_orphans_are_cleaned(work: Path) -> None:
    s1 = OverlaySnapshotter(work / "root")
    top = unpack(s1, [layer(TarBuilder().file("a", b"x"))])
    s1.prepare("active", top, labels={"l": "v"})
    with pytest.raises(Conflict):
        OverlaySnapshotter(work / "root")  # one owner at a time
    s1.close()
    (work / "root" / "snapshots" / "999" / "fs").mkdir(parents=True)  # as a crash would leave it
    (work / "root" / ".probe-crashed" / "m").mkdir(parents=True)
    mount([Mount("bind", str(work / "root" / "snapshots"), ("rbind", "ro"))], work / "root" / ".probe-crashed" / "m")
    s2 = OverlaySnapshotter(work / "root")
    try:
        assert sn_names(s2) == {top, "active"}
        assert s2.stat("active").labels == {"l": "v"}
        assert not (work / "root" / "snapshots" / "999").exists()
        assert not (work / "root" / ".probe-crashed").exists()
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


def test_mount_errors_are_clear(work: Path, sn: OverlaySnapshotter) -> None:
    bad = Mount("overlay", "overlay", ("lowerdir=/nonexistent-berthtest-a:/nonexistent-berthtest-b",))
    mnt = mounted_dir(work, "m")
    with pytest.raises(MountError, match="overlay on"):
        mount([bad], mnt)
    with pytest.raises(MountError):
        unmount(mnt)  # not mounted


def test_layout_uses_short_numeric_ids_and_remove_frees_them(sn: OverlaySnapshotter) -> None:
    top = unpack(sn, [layer(TarBuilder().file("a", b"x")), layer(TarBuilder().file("b", b"y"))])
    mounts = sn.prepare("c", top)
    assert sorted(os.listdir(sn.root / "snapshots")) == ["1", "2", "3"]
    assert os.stat(sn.root).st_mode & 0o777 == 0o700  # host users cannot reach setuid files in layers
    assert set(os.listdir(sn.root / "snapshots" / "3")) == {"fs", "work"}
    assert mounts[0].options[-1] == f"lowerdir={sn.root}/snapshots/2/fs:{sn.root}/snapshots/1/fs"
    sn.remove("c")
    sn.remove(top)
    assert sorted(os.listdir(sn.root / "snapshots")) == ["1"]


def test_cleanup_unmounts_stacked_mounts_and_odd_names(work: Path) -> None:
    src = work / "src"
    src.mkdir()
    odd = work / "with space\tand tab"
    odd.mkdir()
    for _ in range(2):  # two mounts stacked on one point
        mount([Mount("bind", str(src), ("rbind", "ro"))], odd)
    assert is_mounted(odd)
    unmount_all_under(work)
    assert not is_mounted(odd)


def test_auto_mount_falls_back_on_kernels_without_lowerdir_plus(
    work: Path, sn: OverlaySnapshotter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Linux < 6.8 (Debian 12's 6.1 in the VM) rejects "lowerdir+" with EINVAL: mount(2) must take over."""
    import errno

    real_fsconfig = syscalls.fsconfig

    def fsconfig_of_linux_6_1(fd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0):
        if key == "lowerdir+":
            raise OSError(errno.EINVAL, "fsconfig(lowerdir+): Invalid argument")
        return real_fsconfig(fd, cmd, key, value, aux)

    monkeypatch.setattr(syscalls, "fsconfig", fsconfig_of_linux_6_1)
    top = unpack(sn, [layer(TarBuilder().file("a", b"1")), layer(TarBuilder().file("b", b"2"))])
    mnt = mounted_dir(work, "m")
    with caplog.at_level("INFO", logger="engine.snapshots.mounts"):
        mount(sn.prepare("c", top), mnt)
    try:
        assert sorted(os.listdir(mnt)) == ["a", "b"]
    finally:
        unmount(mnt)
    assert "falling back to mount(2)" in caplog.text


def test_root_on_overlayfs_is_refused_early_with_the_kernels_reason(work: Path) -> None:
    """Berth inside a container: its data root is on overlayfs, which cannot be an upperdir."""
    for name in ("l1", "l2", "u", "w", "m"):
        (work / name).mkdir()
    outer = Mount("overlay", "overlay", (f"workdir={work}/w", f"upperdir={work}/u", f"lowerdir={work}/l1:{work}/l2"))
    mount([outer], work / "m")
    try:
        with pytest.raises(SnapshotError, match="not supported as upperdir"):
            OverlaySnapshotter(work / "m" / "root")
    finally:
        unmount(work / "m")

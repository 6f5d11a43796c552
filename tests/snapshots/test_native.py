"""What is specific to the native snapshotter: it works where overlayfs cannot."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from engine.snapshots.errors import SnapshotError
from engine.snapshots.mounts import Mount, mount, unmount
from engine.snapshots.native import NativeSnapshotter
from engine.snapshots.overlay import OverlaySnapshotter
from engine.snapshots.unpack import LayerSource, unpack
from tests.snapshots.helpers import TarBuilder

pytestmark = pytest.mark.needs_root


def layer(tb: TarBuilder) -> LayerSource:
    data = tb.build()
    return LayerSource(open=lambda: io.BytesIO(data), diff_id="sha256:" + hashlib.sha256(data).hexdigest())


def test_native_works_on_a_root_that_is_itself_on_overlayfs(work: Path) -> None:
    """Berth inside a container: overlay refuses the root, native takes over."""
    for name in ("l1", "l2", "u", "w", "m"):
        (work / name).mkdir()
    mount([Mount("overlay", "overlay", (f"workdir={work}/w", f"upperdir={work}/u", f"lowerdir={work}/l1:{work}/l2"))],
          work / "m")
    try:
        with pytest.raises(SnapshotError):
            OverlaySnapshotter(work / "m" / "overlay-root")
        sn = NativeSnapshotter(work / "m" / "root")
        try:
            chain = unpack(sn, [layer(TarBuilder().file("a", b"1").file("b", b"2")),
                                layer(TarBuilder().file(".wh.a").file("c", b"3"))])
            view = work / "view"
            view.mkdir()
            mount(sn.view("v", chain), view)
            try:
                assert sorted(os.listdir(view)) == ["b", "c"]
            finally:
                unmount(view)
            sn.remove("v")
            sn.remove(chain)
        finally:
            sn.close()
    finally:
        unmount(work / "m")


def test_each_native_snapshot_is_an_independent_copy(work: Path) -> None:
    sn = NativeSnapshotter(work / "root")
    try:
        base = unpack(sn, [layer(TarBuilder().file("a", b"base"))])
        mnt = work / "m"
        mnt.mkdir()
        mount(sn.prepare("c1", base), mnt)
        try:
            (mnt / "a").write_bytes(b"changed in c1")
        finally:
            unmount(mnt)
        mount(sn.view("v", base), mnt)
        try:
            assert (mnt / "a").read_bytes() == b"base"
        finally:
            unmount(mnt)
    finally:
        sn.close()


def test_auto_selection_prefers_overlay_and_falls_back_to_native(work: Path) -> None:
    from engine.snapshots.selection import open_snapshotter

    sn = open_snapshotter(work / "plain")
    assert isinstance(sn, OverlaySnapshotter)
    sn.close()
    for name in ("l1", "l2", "u", "w", "m"):
        (work / name).mkdir()
    mount([Mount("overlay", "overlay", (f"workdir={work}/w", f"upperdir={work}/u", f"lowerdir={work}/l1:{work}/l2"))],
          work / "m")
    try:
        sn = open_snapshotter(work / "m" / "root")
        assert isinstance(sn, NativeSnapshotter)
        sn.close()
        with pytest.raises(SnapshotError):
            open_snapshotter(work / "m" / "root", "overlay")
    finally:
        unmount(work / "m")

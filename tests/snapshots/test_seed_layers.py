"""Real layers: the seed images (when built) and a layer GNU tar made from a host directory.

GNU tar is the reference: the tree apply_layer produces must equal what
``tar --xattrs -xpf`` produces from the same bytes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.snapshots.layer_apply import apply_layer
from tests.snapshots.helpers import tree_state

pytestmark = pytest.mark.needs_root

IMAGES = Path(__file__).resolve().parents[2] / "build" / "images"


def archive_layers(archive: Path) -> Iterator[tuple[tarfile.TarFile, str]]:
    """(outer tar, member name) of each layer of a `docker save` or OCI archive, bottom first."""
    with tarfile.open(archive) as outer:
        names = outer.getnames()
        if "manifest.json" in names:
            manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
            for layer in manifest[0]["Layers"]:
                yield outer, layer
        else:
            index = json.load(outer.extractfile("index.json"))  # type: ignore[arg-type]
            digest = index["manifests"][0]["digest"].replace(":", "/")
            manifest = json.load(outer.extractfile(f"blobs/{digest}"))  # type: ignore[arg-type]
            for layer in manifest["layers"]:
                yield outer, "blobs/" + layer["digest"].replace(":", "/")


def seed(name: str) -> Path:
    archive = IMAGES / f"{name}.tar"
    if not archive.exists():
        pytest.skip(f"{archive} not built (make images)")
    return archive


def test_busybox_seed_layer_unpacks(work: Path) -> None:
    root = work / "busybox"
    for i, (outer, member) in enumerate(archive_layers(seed("busybox"))):
        blob = outer.extractfile(member)
        assert blob is not None
        apply_layer(work / f"layer{i}", blob)
        root = work / f"layer{i}"
    bb = os.lstat(root / "bin" / "busybox")
    assert stat.S_ISREG(bb.st_mode) and bb.st_mode & 0o111 and bb.st_uid == 0
    for applet in ("sh", "ls", "cat"):
        p = root / "bin" / applet
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            assert os.readlink(p) in ("/bin/busybox", "busybox")
        else:
            assert st.st_ino == bb.st_ino


def reference_compare(work: Path, layer: Path) -> None:
    ours, ref = work / "ours", work / "ref"
    with open(layer, "rb") as f:
        apply_layer(ours, f)
    ref.mkdir()
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", str(layer), "-C", str(ref)], check=True
    )
    assert tree_state(ours) == tree_state(ref)


@pytest.mark.slow
def test_debian_slim_seed_layer_matches_gnu_tar(work: Path) -> None:
    archive = seed("debian-bookworm-slim")
    for outer, member in archive_layers(archive):
        blob = outer.extractfile(member)
        assert blob is not None
        layer = work / "layer.tar"
        with open(layer, "wb") as f:
            while chunk := blob.read(1 << 20):
                f.write(chunk)
        reference_compare(work, layer)
        return


def test_host_directory_layer_matches_gnu_tar(work: Path) -> None:
    """A few thousand real files (symlinks, hardlinks, odd modes) packed by GNU tar."""
    src = Path("/usr/share/zoneinfo")
    if not src.is_dir():
        pytest.skip("no /usr/share/zoneinfo")
    layer = work / "host.tar"
    subprocess.run(
        ["tar", "--xattrs", "--numeric-owner", "--format=posix", "-C", str(src), "-cf", str(layer), "."], check=True
    )
    reference_compare(work, layer)


def test_rich_directory_layer_matches_gnu_tar(work: Path) -> None:
    """setuid/setgid/sticky, owners, hardlinks, devices, a fifo, file capabilities and user xattrs."""
    src = work / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "su").write_bytes(b"su")
    os.chown(src / "bin" / "su", 0, 0)
    os.chmod(src / "bin" / "su", 0o4755)
    os.link(src / "bin" / "su", src / "bin" / "su2")
    (src / "bin" / "ping").write_bytes(b"ping")
    os.setxattr(src / "bin" / "ping", "security.capability", bytes.fromhex("0100000200040000" + "00" * 12))
    os.setxattr(src / "bin" / "ping", "user.note", b"hi")
    (src / "tmp").mkdir(mode=0o1777)
    os.chmod(src / "tmp", 0o1777)
    (src / "home").mkdir()
    os.chown(src / "home", 1000, 2000)
    os.chmod(src / "home", 0o2750)
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(src / "fifo")
    os.symlink("/bin/su", src / "abs")
    layer = work / "rich.tar"
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--format=posix", "-C", str(src), "-cf",
         str(layer), "."],
        check=True,
    )
    reference_compare(work, layer)
    assert os.getxattr(work / "ours" / "bin" / "ping", "security.capability")[:4] == bytes.fromhex("01000002")

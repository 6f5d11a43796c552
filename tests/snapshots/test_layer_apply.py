"""A well-formed layer comes out exactly as the tar describes it, whatever its compression."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from engine.snapshots.compression import Compression
from engine.snapshots.errors import LayerError
from engine.snapshots.layer_apply import apply_layer
from tests.snapshots.helpers import MTIME, TarBuilder

pytestmark = pytest.mark.needs_root

# security.capability v2 granting cap_net_bind_service (bit 10) permitted+effective, as setcap writes it.
CAP_NET_BIND = bytes.fromhex("01000002" "00040000" "00000000" "00000000" "00000000")


def rich_layer() -> bytes:
    return (
        TarBuilder()
        .dir("./", mode=0o755)
        .dir("bin", mode=0o755)
        .file("bin/su", b"\x7fELF su", mode=0o4755)
        .file("bin/wall", b"\x7fELF wall", mode=0o2755, gid=5)
        .file("bin/ping", b"\x7fELF ping", mode=0o755, xattrs={"security.capability": CAP_NET_BIND})
        .file("bin/tagged", b"data", xattrs={"user.berth.note": b"hello"})
        .hardlink("bin/su-again", "bin/su")
        .symlink("bin/sh", "/bin/busybox")
        .symlink("bin/rel", "../etc/hosts")
        .dir("tmp", mode=0o1777)
        .dir("home/user", mode=0o750, uid=1234, gid=5678)
        .file("home/user/notes", b"x" * 10, mode=0o600, uid=1234, gid=5678, mtime=MTIME + 7)
        .dir("dev")
        .device("dev/null", tarfile.CHRTYPE, 1, 3)
        .device("dev/loop9", tarfile.BLKTYPE, 7, 9, mode=0o660)
        .fifo("run-fifo")
        .file("long/" + "n" * 200, b"long name")
        .file("caf\udce9", b"latin-1 name")
        .build()
    )


def test_metadata_is_preserved(target: Path) -> None:
    applied = apply_layer(target, io.BytesIO(rich_layer()))
    assert applied.entries == 18
    su = os.lstat(target / "bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755 and su.st_nlink == 2
    assert os.lstat(target / "bin/su-again").st_ino == su.st_ino
    wall = os.lstat(target / "bin/wall")
    assert stat.S_IMODE(wall.st_mode) == 0o2755 and wall.st_gid == 5
    assert os.getxattr(target / "bin/ping", "security.capability") == CAP_NET_BIND
    assert os.getxattr(target / "bin/tagged", "user.berth.note") == b"hello"
    assert os.readlink(target / "bin/sh") == "/bin/busybox"
    assert os.readlink(target / "bin/rel") == "../etc/hosts"
    assert stat.S_IMODE(os.lstat(target / "tmp").st_mode) == 0o1777
    home = os.lstat(target / "home/user")
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1234, 5678, 0o750)
    notes = os.lstat(target / "home/user/notes")
    assert (notes.st_uid, notes.st_gid, notes.st_mtime_ns) == (1234, 5678, (MTIME + 7) * 10**9)
    null = os.lstat(target / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = os.lstat(target / "dev/loop9")
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 9)
    assert stat.S_ISFIFO(os.lstat(target / "run-fifo").st_mode)
    assert (target / "long" / ("n" * 200)).read_bytes() == b"long name"
    assert (target / "caf\udce9").read_bytes() == b"latin-1 name"
    # Directory and symlink mtimes survive the children written after them.
    assert os.lstat(target / "bin").st_mtime_ns == MTIME * 10**9
    assert os.lstat(target / "bin/sh").st_mtime_ns == MTIME * 10**9
    assert os.lstat(target).st_mtime_ns == MTIME * 10**9


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_diff_id_is_the_uncompressed_sha256(work: Path, compress: str) -> None:
    plain = rich_layer()
    blob = {"none": plain, "gzip": gzip.compress(plain), "zstd": zstandard.ZstdCompressor().compress(plain)}[compress]
    applied = apply_layer(work / "t", io.BytesIO(blob))
    assert applied.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert applied.size == len(plain)
    assert applied.compression is Compression(compress)


def test_multi_frame_zstd_and_multi_member_gzip(work: Path) -> None:
    plain = rich_layer()
    half = len(plain) // 2
    zc = zstandard.ZstdCompressor()
    two_frames = zc.compress(plain[:half]) + zc.compress(plain[half:])
    two_members = gzip.compress(plain[:half]) + gzip.compress(plain[half:])
    want = "sha256:" + hashlib.sha256(plain).hexdigest()
    assert apply_layer(work / "z", io.BytesIO(two_frames)).diff_id == want
    assert apply_layer(work / "g", io.BytesIO(two_members)).diff_id == want


def test_declared_media_type_must_match_the_bytes(target: Path) -> None:
    with pytest.raises(LayerError, match="declared gzip"):
        apply_layer(target, io.BytesIO(rich_layer()), "application/vnd.oci.image.layer.v1.tar+gzip")
    gz = gzip.compress(rich_layer())
    applied = apply_layer(target, io.BytesIO(gz), "application/vnd.docker.image.rootfs.diff.tar.gzip")
    assert applied.compression is Compression.GZIP


def test_wrong_expected_diff_id_leaves_nothing(target: Path) -> None:
    with pytest.raises(LayerError, match="DiffID"):
        apply_layer(target, io.BytesIO(rich_layer()), expected_diff_id="sha256:" + "0" * 64)
    assert list(target.iterdir()) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["sentinel", "target"]


def test_truncated_gzip_leaves_nothing(target: Path) -> None:
    gz = gzip.compress(rich_layer() + os.urandom(4096))
    with pytest.raises(LayerError):
        apply_layer(target, io.BytesIO(gz[: len(gz) - 100]))
    assert list(target.iterdir()) == []


def test_target_must_be_empty(target: Path) -> None:
    (target / "x").write_text("old")
    with pytest.raises(LayerError, match="not empty"):
        apply_layer(target, io.BytesIO(rich_layer()))


def test_sparse_file_keeps_its_holes(work: Path) -> None:
    src = work / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(64 << 20)
        f.write(b"end")
        f.seek(0)
        f.write(b"start")
    tar_path = work / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=posix", "-C", str(src), "-cf", str(tar_path), "sparse"], check=True)
    with open(tar_path, "rb") as f:
        apply_layer(work / "out", f)
    out = work / "out" / "sparse"
    assert out.stat().st_size == (64 << 20) + 3
    assert out.stat().st_blocks * 512 < 1 << 20, "holes were written as zeros"
    with open(out, "rb") as f:
        assert f.read(5) == b"start"
        f.seek(64 << 20)
        assert f.read() == b"end"


def test_same_layer_content_beats_its_own_whiteout(target: Path) -> None:
    apply_layer(target, io.BytesIO(TarBuilder().file(".wh.a").file("a", b"kept").file("b", b"b").file(".wh.b").build()))
    assert (target / "a").read_bytes() == b"kept"
    assert (target / "b").read_bytes() == b"b"


def test_entries_replace_earlier_ones_in_subdirectories(target: Path) -> None:
    tb = (
        TarBuilder()
        .dir("a/b/c").file("a/b/c/f", b"1").symlink("a/b/s", "/etc")
        .file("a/b/c", b"file now")  # a directory replaced by a file
        .dir("a/b/s").file("a/b/s/x", b"x")  # a symlink replaced by a directory
        .file("a/b/s/x", b"y")  # a file replaced by a file
    )
    apply_layer(target, io.BytesIO(tb.build()))
    assert (target / "a/b/c").read_bytes() == b"file now"
    assert (target / "a/b/s").is_dir() and not (target / "a/b/s").is_symlink()
    assert (target / "a/b/s/x").read_bytes() == b"y"


def test_many_directories_do_not_exhaust_file_descriptors(work: Path) -> None:
    tb = TarBuilder()
    for i in range(600):  # two lookups each: beyond the 512-entry cache, so it is flushed twice
        tb.dir(f"d{i}/sub").file(f"d{i}/sub/f", b"x")
    fds_before = len(os.listdir("/proc/self/fd"))
    apply_layer(work / "t", io.BytesIO(tb.build()), durable=False)
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert os.lstat(work / "t" / "d599" / "sub").st_mtime_ns == MTIME * 10**9

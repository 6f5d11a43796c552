"""The double-walk differ on plain directories."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from engine.snapshots.tree_diff import diff_trees

pytestmark = pytest.mark.needs_root


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def copy(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "-aT", str(src), str(dst)], check=True)


def diff(lower: Path | None, upper: Path) -> bytes:
    out = io.BytesIO()
    diff_trees(lower, upper, out)
    return out.getvalue()


def test_identical_trees_give_an_empty_layer(work: Path) -> None:
    (work / "l" / "d").mkdir(parents=True)
    (work / "l" / "d" / "f").write_bytes(b"x")
    copy(work / "l", work / "u")
    assert names(diff(work / "l", work / "u")) == []


def test_same_size_same_second_rewrite_is_seen(work: Path) -> None:
    lower, upper = work / "l", work / "u"
    lower.mkdir()
    (lower / "f").write_bytes(b"old!")
    os.utime(lower / "f", ns=(10**18, 10**18))  # whole seconds: a rewrite could hide behind it
    copy(lower, upper)
    (upper / "f").write_bytes(b"new!")
    os.utime(upper / "f", ns=(10**18, 10**18))
    assert names(diff(lower, upper)) == ["f"]


def test_whiteouts_types_and_hardlinks(work: Path) -> None:
    lower, upper = work / "l", work / "u"
    (lower / "dir").mkdir(parents=True)
    (lower / "dir" / "inner").write_bytes(b"i")
    (lower / "file").write_bytes(b"f")
    (lower / "gone").write_bytes(b"g")
    copy(lower, upper)
    shutil.rmtree(upper / "dir")
    (upper / "dir").write_bytes(b"now a file")  # dir -> file
    (upper / "file").unlink()
    (upper / "file").mkdir()  # file -> dir
    (upper / "file" / "child").write_bytes(b"c")
    (upper / "gone").unlink()
    (upper / "h1").write_bytes(b"h")
    os.link(upper / "h1", upper / "h2")
    os.mknod(upper / "null", 0o020666, os.makedev(1, 3))
    data = diff(lower, upper)
    assert names(data) == ["dir", "file", "file/child", ".wh.gone", "h1", "h2", "null"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("h2").islnk() and tar.getmember("file").isdir()
        assert tar.getmember("null").ischr()


def test_without_a_lower_everything_is_new(work: Path) -> None:
    (work / "u" / "a").mkdir(parents=True)
    (work / "u" / "a" / "b").write_bytes(b"b")
    assert names(diff(None, work / "u")) == ["a", "a/b"]

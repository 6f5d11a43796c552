"""docker's `cp` path rules (docker/cli splitCpArg, moby archive SplitPathDirEntry / PrepareArchiveCopy)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.cli.copy_paths import (
    CopyError,
    CopyInfo,
    destination_info,
    prepare_copy,
    rebase_name,
    resolve_local_path,
    split_cp_arg,
    split_path_dir_entry,
)


@pytest.mark.parametrize(("arg", "expected"), [
    ("c:/etc", ("c", "/etc")),
    ("/abs:path", ("", "/abs:path")),
    ("./file:name", ("", "./file:name")),
    ("plain", ("", "plain")),
    ("c:", ("c", "")),
])
def test_split_cp_arg(arg: str, expected: tuple[str, str]) -> None:
    assert split_cp_arg(arg) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("/a/b", ("/a", "b")), ("/a/b/", ("/a", "b")), ("/a/b/.", ("/a/b", ".")), ("/", ("/", "/")),
])
def test_split_path_dir_entry(path: str, expected: tuple[str, str]) -> None:
    assert split_path_dir_entry(path) == expected


def test_local_paths_keep_their_trailing_dot_or_slash(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    assert resolve_local_path("d/.") == f"{tmp_path}/d/."
    assert resolve_local_path("d/") == f"{tmp_path}/d/"
    assert rebase_name("/x/link/", "/x/target") == ("/x/target/", "link")


@pytest.mark.parametrize(("src_dir", "dst", "expected"), [
    (True, CopyInfo("/d", exists=True, is_dir=True), ("/d", None)),  # into an existing directory
    (True, CopyInfo("/new"), ("/", "new")),  # created as the copy
    (False, CopyInfo("/f", exists=True), ("/", "f")),  # a file replaces a file
    (False, CopyInfo("/new"), ("/", "new")),
])
def test_prepare_copy(src_dir: bool, dst: CopyInfo, expected: tuple[str, str | None]) -> None:
    assert prepare_copy(CopyInfo("/src/x", True, src_dir), dst) == expected


@pytest.mark.parametrize(("src_dir", "dst", "message"), [
    (True, CopyInfo("/f", exists=True), "cannot copy directory"),
    (False, CopyInfo("/missing/"), "no such directory"),
])
def test_prepare_copy_refusals(src_dir: bool, dst: CopyInfo, message: str) -> None:
    with pytest.raises(CopyError, match=message):
        prepare_copy(CopyInfo("/src/x", True, src_dir), dst)


def test_destination_symlinks_are_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "link")
    info = destination_info(str(tmp_path / "link"))
    assert (info.path, info.exists, info.is_dir) == (str(tmp_path / "real"), True, True)
    with pytest.raises(CopyError):
        destination_info(str(tmp_path / "nope" / "x"))

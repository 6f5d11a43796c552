"""`docker cp` tars unpacked by CopyExtractor and written by tree_tar: moby's Unpack rules, nothing outside the root."""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from engine.snapshots.copy_extract import CopyExtractor
from engine.snapshots.errors import LayerError
from engine.snapshots.rooted import RootedDir
from engine.snapshots.tar_writer import LayerTarWriter
from engine.snapshots.tree_tar import add_tree


def _tar(*members: tuple[str, bytes, str | bytes]) -> io.BytesIO:
    """(name, type, data or link target) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = str(payload)
                tar.addfile(info)
            elif kind == tarfile.REGTYPE:
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    buf.seek(0)
    return buf


def _extract(root: Path, tar: io.BytesIO, dest: list[str] | None = None, **kwargs: object) -> None:
    with RootedDir(root, cross_mounts=True) as rooted:
        CopyExtractor(rooted, dest or [], **kwargs).run(tar)  # type: ignore[arg-type]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(a container-like root with /dest, a canary file outside it)."""
    root = tmp_path / "root"
    (root / "dest").mkdir(parents=True)
    (root / "etc").mkdir()
    canary = tmp_path / "canary"
    canary.write_text("untouched")
    return root, canary


@pytest.mark.parametrize("members", [
    [("../../canary", tarfile.REGTYPE, "pwned")],
    [("../x", tarfile.REGTYPE, "climbs above dest")],
    [("rel", tarfile.SYMTYPE, "../../.."), ("rel/canary", tarfile.REGTYPE, "pwned")],
    [("hl", tarfile.LNKTYPE, "../../canary")],
    [(".wh.file", tarfile.REGTYPE, "")],
])
def test_breakouts_are_refused(layout: tuple[Path, Path], members: list[tuple[str, bytes, str]]) -> None:
    root, canary = layout
    with pytest.raises(LayerError):
        _extract(root, _tar(*members), ["dest"])
    assert canary.read_text() == "untouched" and os.stat(canary).st_nlink == 1
    assert not (root / "x").exists()


def test_absolute_names_and_symlinks_stay_inside_the_root(layout: tuple[Path, Path]) -> None:
    root, canary = layout
    _extract(root, _tar(("esc", tarfile.SYMTYPE, "/"), (f"esc{canary}", tarfile.REGTYPE, "inside"),
                        ("/abs.txt", tarfile.REGTYPE, "abs"), ("etc-link", tarfile.SYMTYPE, "/etc"),
                        ("etc-link/written", tarfile.REGTYPE, "w")), ["dest"])
    assert canary.read_text() == "untouched"
    assert (root / str(canary).lstrip("/")).read_text() == "inside"  # the container's own copy of that path
    assert (root / "dest" / "abs.txt").read_text() == "abs"
    assert (root / "etc" / "written").read_text() == "w"  # an absolute symlink is the *container's* /etc


def test_a_hardlink_to_a_host_path_is_looked_up_inside(layout: tuple[Path, Path]) -> None:
    root, canary = layout
    with pytest.raises(LayerError):
        _extract(root, _tar(("hl", tarfile.LNKTYPE, str(canary))), ["dest"])
    assert os.stat(canary).st_nlink == 1


def test_no_overwrite_dir_non_dir(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "dest" / "d").mkdir()
    (root / "dest" / "f").write_text("file")
    with pytest.raises(LayerError, match="cannot overwrite directory"):
        _extract(root, _tar(("d", tarfile.REGTYPE, "x")), ["dest"], no_overwrite_dir_non_dir=True)
    with pytest.raises(LayerError, match="cannot overwrite non-directory"):
        _extract(root, _tar(("f", tarfile.DIRTYPE, b"")), ["dest"], no_overwrite_dir_non_dir=True)
    _extract(root, _tar(("f", tarfile.REGTYPE, "replaced")), ["dest"], no_overwrite_dir_non_dir=True)
    assert (root / "dest" / "f").read_text() == "replaced"


def test_rebase_and_chown(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    _extract(root, _tar(("src", tarfile.DIRTYPE, b""), ("src/a", tarfile.REGTYPE, "a"), ("src/h", tarfile.LNKTYPE,
                                                                                       "src/a")),
             ["dest"], rebase=("src", "renamed"), chown=(1234, 5678))
    st = os.stat(root / "dest" / "renamed" / "a")
    assert (st.st_uid, st.st_gid, st.st_nlink) == (1234, 5678, 2)


def test_tree_tar_names_and_never_follows_links(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("f")
    os.symlink("/etc", tree / "etc-link")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "sock"))
        for base, name, expected in [
            ("tree", "tree", ["tree", "tree/etc-link", "tree/sub", "tree/sub/f"]),
            ("", ".", [".", "./etc-link", "./sub", "./sub/f"]),
        ]:
            out = io.BytesIO()
            parent = os.open(tree if not base else tmp_path, os.O_PATH | os.O_DIRECTORY)
            try:
                with LayerTarWriter(out) as writer:
                    add_tree(writer, parent, base, name, "/", None)
            finally:
                os.close(parent)
            out.seek(0)
            with tarfile.open(fileobj=out) as tar:
                members = tar.getmembers()
            assert [m.name for m in members] == expected
            link = next(m for m in members if m.name.endswith("etc-link"))
            assert link.issym() and link.linkname == "/etc"


def test_a_file_swapped_for_a_fifo_after_its_lstat_does_not_hang_the_reader(tmp_path: Path) -> None:
    """A running container can swap files while `docker cp` reads them: the open must not block."""
    victim = tmp_path / "victim"
    victim.write_text("regular")
    seen = os.lstat(victim)
    victim.unlink()
    os.mkfifo(victim)  # no writer will ever come
    with LayerTarWriter(io.BytesIO()) as writer, pytest.raises(LayerError, match="non-regular"):
        writer.add("victim", victim, seen)

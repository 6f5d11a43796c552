"""Diff two full trees into an OCI layer tar (the native snapshotter's differ).

Walks the parent tree and the changed tree side by side (containerd's
"double walk" differ): a name only in the new tree is added, a name only in
the parent becomes a ``.wh.`` whiteout (image-spec layer.md), and a name in
both is written again when its type, mode, owner, xattrs, device number,
symlink target, size or mtime differ -- or, when the mtime has no
sub-second part and so could hide a same-second rewrite, when its bytes
differ.  Directories are written when their own metadata changed; their
children are compared one by one.  Output order and format are those of
:mod:`engine.snapshots.tar_writer`, so the result is deterministic.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from engine.snapshots.tar_writer import DiffResult, LayerTarWriter, file_xattrs

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def diff_trees(lower: Path | None, upper: Path, out: BinaryIO) -> DiffResult:
    """Write what turns ``lower`` (None: an empty tree) into ``upper`` to ``out`` as a layer tar."""
    with LayerTarWriter(out) as tar:
        stack: list[tuple[str, Path | None, Path, Iterator[str]]] = [("", lower, upper, _names(lower, upper))]
        while stack:
            rel_dir, ldir, udir, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            lpath = ldir / name if ldir is not None else None
            upath = udir / name
            lst = _lstat(lpath)
            ust = _lstat(upath)
            if ust is None:
                assert lst is not None
                tar.add_whiteout(rel, lst)
                continue
            if stat.S_ISDIR(ust.st_mode):
                both_dirs = lst is not None and stat.S_ISDIR(lst.st_mode)
                if not both_dirs or _meta_changed(lpath, lst, upath, ust):
                    tar.add(rel, upath, ust)
                sub_lower = lpath if both_dirs else None
                stack.append((rel, sub_lower, upath, _names(sub_lower, upath)))
            elif lst is None or _changed(lpath, lst, upath, ust):
                tar.add(rel, upath, ust)
    assert tar.result is not None
    log.info("diff of %s over %s: %d entries, %s", upper, lower, tar.result.entries, tar.result.diff_id)
    return tar.result


def _names(lower: Path | None, upper: Path) -> Iterator[str]:
    names = set(os.listdir(upper))
    if lower is not None:
        names.update(os.listdir(lower))
    return iter(sorted(names, key=os.fsencode))


def _lstat(path: Path | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _meta_changed(lpath: Path | None, lst: os.stat_result | None, upath: Path, ust: os.stat_result) -> bool:
    assert lpath is not None and lst is not None
    return (
        stat.S_IFMT(lst.st_mode) != stat.S_IFMT(ust.st_mode)
        or stat.S_IMODE(lst.st_mode) != stat.S_IMODE(ust.st_mode)
        or (lst.st_uid, lst.st_gid) != (ust.st_uid, ust.st_gid)
        or file_xattrs(lpath) != file_xattrs(upath)
    )


def _changed(lpath: Path | None, lst: os.stat_result, upath: Path, ust: os.stat_result) -> bool:
    if _meta_changed(lpath, lst, upath, ust):
        return True
    assert lpath is not None
    mode = ust.st_mode
    if stat.S_ISLNK(mode):
        return os.readlink(lpath) != os.readlink(upath)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return lst.st_rdev != ust.st_rdev
    if not stat.S_ISREG(mode):
        return False
    if lst.st_size != ust.st_size or lst.st_mtime_ns != ust.st_mtime_ns:
        return True
    if ust.st_mtime_ns % 1_000_000_000 == 0:
        return not _same_bytes(lpath, upath)
    return False


def _same_bytes(a: Path, b: Path) -> bool:
    with open(a, "rb", opener=_nofollow) as fa, open(b, "rb", opener=_nofollow) as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)

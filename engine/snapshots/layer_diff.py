"""Turn an overlay upper directory back into an OCI layer tar (for commit and build).

The reverse of :mod:`engine.snapshots.layer_apply`: overlay whiteouts (0/0
character devices) become ``.wh.<name>`` files and opaque directories
(``trusted.overlay.opaque=y``) get a ``.wh..wh..opq`` entry, per image-spec
layer.md "Whiteouts".  A whiteout is emitted only when the name exists in the
lower view (overlay leaves none otherwise, but an upper dir may come from
elsewhere).  Upper dirs that use overlay's redirect or metacopy features are
refused: a tar cannot say "this directory was renamed from there".

The output is deterministic: depth first, each directory before its children
and siblings in byte order of their names; numeric
owners only, whole-second mtimes, xattrs sorted, no atime/ctime.  Identical
trees give identical bytes and so the same DiffID.  Sparse files are written
with their holes filled in.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from engine.snapshots import whiteouts
from engine.snapshots.errors import LayerError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiffResult:
    diff_id: str  # sha256 of the tar written to ``out``
    size: int
    entries: int


class _HashingWriter(io.RawIOBase):
    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(b)
        self._out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def diff_layer(lower_dirs: Sequence[Path], upper_dir: Path, out: BinaryIO) -> DiffResult:
    """Write the changes ``upper_dir`` holds over ``lower_dirs`` (top first) to ``out`` as a tar."""
    writer = _HashingWriter(out)
    count = 0
    seen_inodes: dict[tuple[int, int], str] = {}
    lowers = [Path(p) for p in lower_dirs]
    with tarfile.open(fileobj=cast(IO[bytes], writer), mode="w|", format=tarfile.PAX_FORMAT) as tar:
        root_st = os.lstat(upper_dir)
        _check_overlay_xattrs(upper_dir, "")
        if _is_opaque(upper_dir):
            tar.addfile(_marker(whiteouts.OPAQUE_MARKER, root_st))
            count += 1
        for rel, path, st in _walk(upper_dir):
            _check_overlay_xattrs(path, rel)
            if whiteouts.is_overlay_whiteout(st):
                if _in_lower_view(lowers, rel):
                    parent, _, name = rel.rpartition("/")
                    wh = f"{parent}/{whiteouts.WHITEOUT_PREFIX}{name}" if parent else whiteouts.WHITEOUT_PREFIX + name
                    tar.addfile(_marker(wh, st))
                    count += 1
                continue
            if stat.S_ISSOCK(st.st_mode):
                log.warning("skipping socket %s: tar cannot hold it", rel)
                continue
            info = _header(rel, path, st)
            if stat.S_ISREG(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                first = seen_inodes.get(ident) if st.st_nlink > 1 else None
                if first is not None:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                    tar.addfile(info)
                else:
                    seen_inodes[ident] = rel
                    info.size = st.st_size
                    with open(path, "rb", opener=_nofollow_opener) as f:
                        tar.addfile(info, f)
            else:
                tar.addfile(info)
            count += 1
            if stat.S_ISDIR(st.st_mode) and _is_opaque(path):
                tar.addfile(_marker(f"{rel}/{whiteouts.OPAQUE_MARKER}", st))
                count += 1
    result = DiffResult(diff_id="sha256:" + writer.sha.hexdigest(), size=writer.size, entries=count)
    log.info("diff of %s: %d entries, %d bytes, %s", upper_dir, count, writer.size, result.diff_id)
    return result


def _walk(top: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative name, path, lstat) of everything below ``top``: depth first, each directory
    right before its children, siblings in byte order (iterative: no recursion limit)."""
    stack: list[tuple[str, Path, Iterator[str]]] = [("", top, iter(_sorted_names(top)))]
    while stack:
        rel_dir, dir_path, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        rel = f"{rel_dir}/{name}" if rel_dir else name
        path = dir_path / name
        st = os.lstat(path)
        yield rel, path, st
        if stat.S_ISDIR(st.st_mode):
            stack.append((rel, path, iter(_sorted_names(path))))


def _sorted_names(path: Path) -> list[str]:
    return sorted(os.listdir(path), key=os.fsencode)


def _header(rel: str, path: Path, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISREG(mode):
        info.type = tarfile.REGTYPE
    else:
        raise LayerError(f"cannot put file type {stat.S_IFMT(mode):o} in a tar", rel)
    pax: dict[str, str] = {}
    for name in sorted(_listxattr(path)):
        if name.startswith(whiteouts.OVERLAY_XATTR_PREFIX):
            continue  # overlay's bookkeeping, expressed as whiteouts instead
        value = os.getxattr(path, name, follow_symlinks=False)
        pax["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = pax
    return info


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    """An empty regular file standing for a whiteout or opaque marker (layer.md)."""
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


def _listxattr(path: Path) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, whiteouts.OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _check_overlay_xattrs(path: Path, rel: str) -> None:
    for name in _listxattr(path):
        if name in whiteouts.UNSUPPORTED_XATTRS:
            raise LayerError(f"upper dir uses overlay feature {name}, which a layer tar cannot express", rel or ".")


def _in_lower_view(lowers: Sequence[Path], rel: str) -> bool:
    """Whether ``rel`` is visible in the overlay of ``lowers`` (top first), without following symlinks."""
    parts = rel.split("/")
    for lower in lowers:
        cur = lower
        blocked = False
        for i, part in enumerate(parts):
            cur = cur / part
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                break
            if whiteouts.is_overlay_whiteout(st):
                return False  # deleted here: nothing below can show it
            if i == len(parts) - 1:
                return True
            if not stat.S_ISDIR(st.st_mode):
                break
            if _is_opaque(cur):
                blocked = True  # nothing below this layer shows through this directory
        if blocked:
            return False
    return False


def _nofollow_opener(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)

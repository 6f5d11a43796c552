"""Writes deterministic OCI layer tars from files on disk (shared by the differs).

Deterministic: numeric owners only (no user/group names), whole-second
mtimes, xattrs sorted, no atime/ctime, PAX format; the caller supplies the
entries in a stable order.  Identical trees give identical bytes and so the
same DiffID.  A file whose inode was already written becomes a hardlink
entry.  overlay's own ``trusted.overlay.*`` xattrs are never written: they
are expressed as whiteouts instead (image-spec layer.md).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, cast

from engine.snapshots import whiteouts
from engine.snapshots.errors import LayerError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiffResult:
    diff_id: str  # sha256 of the tar written
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


class LayerTarWriter:
    """``with LayerTarWriter(out) as w: w.add(...)``; then ``w.result``."""

    def __init__(self, out: BinaryIO) -> None:
        self._writer = _HashingWriter(out)
        # Closed in __exit__: the writer is a context manager itself.
        self._tar = tarfile.open(  # noqa: SIM115
            fileobj=cast(IO[bytes], self._writer), mode="w|", format=tarfile.PAX_FORMAT
        )
        self._inodes: dict[tuple[int, int], str] = {}
        self.entries = 0
        self.result: DiffResult | None = None

    def __enter__(self) -> LayerTarWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._tar.close()
        if exc_type is None:
            self.result = DiffResult(
                diff_id="sha256:" + self._writer.sha.hexdigest(), size=self._writer.size, entries=self.entries
            )

    def add(self, rel: str, path: Path, st: os.stat_result) -> None:
        """The file at ``path`` (already lstat'ed as ``st``) as entry ``rel``."""
        if stat.S_ISSOCK(st.st_mode):
            log.warning("skipping socket %s: tar cannot hold it", rel)
            return
        info = tar_header(rel, path, st)
        if stat.S_ISREG(st.st_mode):
            ident = (st.st_dev, st.st_ino)
            first = self._inodes.get(ident) if st.st_nlink > 1 else None
            if first is not None:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
                self._tar.addfile(info)
            else:
                self._inodes[ident] = rel
                info.size = st.st_size
                with open(path, "rb", opener=_nofollow_opener) as f:
                    self._tar.addfile(info, f)
        else:
            self._tar.addfile(info)
        self.entries += 1

    def add_marker(self, name: str, st: os.stat_result) -> None:
        """An empty regular file standing for a whiteout or opaque marker (layer.md)."""
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        self._tar.addfile(info)
        self.entries += 1

    def add_whiteout(self, rel: str, st: os.stat_result) -> None:
        parent, _, name = rel.rpartition("/")
        marker = whiteouts.WHITEOUT_PREFIX + name
        self.add_marker(f"{parent}/{marker}" if parent else marker, st)


def tar_header(rel: str, path: Path, st: os.stat_result) -> tarfile.TarInfo:
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
    info.pax_headers = {
        "SCHILY.xattr." + name: value.decode("utf-8", "surrogateescape") for name, value in file_xattrs(path).items()
    }
    return info


def file_xattrs(path: Path) -> dict[str, bytes]:
    """A file's xattrs (not following symlinks) in name order, without overlay's bookkeeping."""
    out: dict[str, bytes] = {}
    for name in sorted(listxattr(path)):
        if not name.startswith(whiteouts.OVERLAY_XATTR_PREFIX):
            out[name] = os.getxattr(path, name, follow_symlinks=False)
    return out


def listxattr(path: Path) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []


def _nofollow_opener(path: str, flags: int) -> int:
    # O_NONBLOCK changes nothing for a regular file, but a tree that changes while it is read
    # (`docker cp` out of a running container) could swap a FIFO in after the lstat: opening
    # that must not block forever.
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LayerError("changed into a non-regular file while it was read", path)
    return fd

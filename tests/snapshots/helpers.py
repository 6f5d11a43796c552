"""Hand-built layer tars and tree fingerprints for the snapshot tests."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MTIME = 1_600_000_000


def _pax_xattrs(xattrs: dict[str, bytes] | None) -> dict[str, str]:
    # tarfile writes surrogate-escaped str back as the original bytes (hdrcharset=BINARY).
    return {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in (xattrs or {}).items()}


@dataclass
class TarBuilder:
    """Builds a tar in memory, entry by entry, in the order given (order matters for attacks)."""

    members: list[tuple[tarfile.TarInfo, bytes | None]] = field(default_factory=list)

    def _info(self, name: str, kind: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = mtime
        return ti

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0,
             mtime: int = MTIME, xattrs: dict[str, bytes] | None = None) -> TarBuilder:
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
        ti.size = len(data)
        ti.pax_headers = _pax_xattrs(xattrs)
        self.members.append((ti, data))
        return self

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME,
            xattrs: dict[str, bytes] | None = None) -> TarBuilder:
        ti = self._info(name, tarfile.DIRTYPE, mode, uid, gid, mtime)
        ti.pax_headers = _pax_xattrs(xattrs)
        self.members.append((ti, None))
        return self

    def symlink(self, name: str, target: str, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> TarBuilder:
        ti = self._info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
        ti.linkname = target
        self.members.append((ti, None))
        return self

    def hardlink(self, name: str, target: str) -> TarBuilder:
        ti = self._info(name, tarfile.LNKTYPE, 0o644, 0, 0, MTIME)
        ti.linkname = target
        self.members.append((ti, None))
        return self

    def device(self, name: str, kind: bytes, major: int, minor: int, mode: int = 0o666) -> TarBuilder:
        ti = self._info(name, kind, mode, 0, 0, MTIME)
        ti.devmajor, ti.devminor = major, minor
        self.members.append((ti, None))
        return self

    def fifo(self, name: str, mode: int = 0o644) -> TarBuilder:
        self.members.append((self._info(name, tarfile.FIFOTYPE, mode, 0, 0, MTIME), None))
        return self

    def build(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for ti, data in self.members:
                tar.addfile(ti, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def tree_state(root: Path, with_times: bool = True) -> dict[str, tuple[object, ...]]:
    """Everything observable about a tree: type, mode, owner, content/target, device, xattrs, mtime."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                body: object = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(p)
            else:
                body = st.st_rdev if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) else None
            try:
                names = sorted(os.listxattr(p, follow_symlinks=False))
                xattrs = tuple((n, os.getxattr(p, n, follow_symlinks=False)) for n in names)
            except OSError:
                xattrs = ()
            mtime = st.st_mtime_ns if with_times and not stat.S_ISDIR(st.st_mode) else None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, body, xattrs, mtime)
    return out


def host_etc_state() -> tuple[object, ...]:
    """A fingerprint of the host's /etc: its names and the files an attacker would aim at."""
    names = tuple(sorted(os.listdir("/etc")))
    files: list[tuple[object, ...]] = []
    for f in ("/etc/passwd", "/etc/shadow", "/etc/hostname", "/etc/hosts"):
        try:
            st = os.lstat(f)
            files.append((f, st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode, st.st_nlink))
        except FileNotFoundError:
            files.append((f, None, None, None, None, None))
    return names, tuple(files)

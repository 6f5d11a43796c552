"""COPY and ADD into a mounted build rootfs, with the classic builder's rules.

Sources are resolved inside their own root (the build context, or another
stage's or image's filesystem for ``--from``) and destinations inside the
image's root, both with openat2(RESOLVE_IN_ROOT) (engine.snapshots.rooted):
a symlink in the context or in the image can never lead a read or a write
out of its tree.  The rules follow the Dockerfile reference and moby's
builder/dockerfile/copy.go:

* a source is a path or a glob (``filepath.Match``) relative to its root;
  ``../`` above the root is "outside the build context";
* a directory source copies its *contents*; a file goes to ``dest`` itself
  unless ``dest`` ends with ``/`` (or is an existing directory, or there are
  several sources, which then require a ``/``-terminated destination);
* a relative ``dest`` is relative to WORKDIR; missing parents are created
  0755 root;
* new files are owned 0:0 unless ``--chown`` (names looked up in the image's
  /etc/passwd and /etc/group; a user without group also sets the group);
  modes are kept unless ``--chmod``;
* ADD extracts a local tar (plain, gzip, bzip2, xz) into ``dest`` and fetches
  a URL (an unreachable one is a clear error).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.build.errors import BuildError
from engine.runtime import syscalls
from engine.snapshots.layer_apply import WhiteoutMode, apply_layer
from engine.snapshots.rooted import RootedDir, split_clean

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
_CHUNK = 1 << 20
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
URL_TIMEOUT = 30.0


class CopyError(BuildError):
    """A COPY/ADD that cannot be carried out (missing source, path outside the context...)."""


@dataclass(frozen=True)
class Source:
    """One resolved source: its name as written (for messages) and its real path on the host."""

    written: str
    name: str  # the last component as found (before symlinks were followed)
    path: Path
    is_dir: bool


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _real_path(root: Path, parts: list[str]) -> Path:
    """The host path of ``parts`` resolved inside ``root`` (symlinks followed within the root)."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = syscalls.openat2(root_fd, "/".join(parts) or ".", os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE)
    finally:
        os.close(root_fd)
    try:
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
    finally:
        os.close(fd)
    if real != root and root not in real.parents:
        raise CopyError(f"{'/'.join(parts)} resolves outside its root")
    return real


def resolve_sources(root: Path, written: list[str], context_name: str = "build context") -> list[Source]:
    """Expand globs and resolve every source inside ``root``."""
    found: list[Source] = []
    for text in written:
        cleaned = posixpath.normpath("/" + text.replace("\\", "/")) if text else "/"
        if posixpath.normpath(text).startswith("../") or posixpath.normpath(text) == "..":
            raise CopyError(f"forbidden path outside the {context_name}: {text} ()")
        parts = [p for p in cleaned.split("/") if p]
        if any(ch in text for ch in "*?["):
            matches = _glob(root, parts)
            if not matches:
                raise CopyError(f"no source files were specified ({text})")
            found.extend(_source(root, text, m) for m in matches)
            continue
        found.append(_source(root, text, parts))
    return found


def _source(root: Path, written: str, parts: list[str]) -> Source:
    try:
        real = _real_path(root, parts)
    except (FileNotFoundError, NotADirectoryError):
        raise CopyError(f"file not found in build context or excluded by .dockerignore: stat {written}: "
                        "file does not exist") from None
    return Source(written, parts[-1] if parts else "", real, real.is_dir())


def _glob(root: Path, parts: list[str]) -> list[list[str]]:
    """filepath.Match per component, walking from ``root`` (never following symlinked directories out)."""
    current: list[list[str]] = [[]]
    for part in parts:
        following: list[list[str]] = []
        for prefix in current:
            try:
                directory = _real_path(root, prefix)
                names = sorted(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError, CopyError):
                continue
            if any(ch in part for ch in "*?["):
                following.extend([*prefix, n] for n in names if fnmatch.fnmatchcase(n, part))
            elif part in names:
                following.append([*prefix, part])
        current = following
    return current


def _walk(path: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative name, path, lstat) of ``path`` itself ("") and, for a directory, all below, sorted."""
    st = os.lstat(path)
    yield "", path, st
    if not stat.S_ISDIR(st.st_mode):
        return
    stack = [("", path)]
    while stack:
        rel_dir, directory = stack.pop()
        for name in sorted(os.listdir(directory), reverse=True):
            child = directory / name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            child_st = os.lstat(child)
            yield rel, child, child_st
            if stat.S_ISDIR(child_st.st_mode):
                stack.append((rel, child))


def checksum(sources: list[Source]) -> str:
    """A digest of the sources' names, types, modes, owners, link targets and bytes (not times)."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(f"source {source.written}\n".encode())
        for rel, path, st in sorted(_walk(source.path), key=lambda item: item[0]):
            digest.update(f"{rel}\0{st.st_mode:o}\0{st.st_uid}\0{st.st_gid}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb", opener=_nofollow) as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
            digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


@dataclass(frozen=True)
class Ownership:
    uid: int = 0
    gid: int = 0


def parse_chmod(text: str | None) -> int | None:
    if not text:
        return None
    try:
        mode = int(text, 8)
    except ValueError:
        raise CopyError(f"invalid chmod parameter: {text!r} (an octal mode is expected)") from None
    if mode > 0o7777:
        raise CopyError(f"invalid chmod parameter: {text!r}")
    return mode


class Destination:
    """Writes into ``root`` (a mounted build rootfs), every lookup resolved inside it."""

    def __init__(self, root: Path, owner: Ownership, chmod: int | None) -> None:
        self.rooted = RootedDir(root)
        self.root = root
        self.owner = owner
        self.chmod = chmod

    def close(self) -> None:
        self.rooted.close()

    def is_dir(self, parts: list[str]) -> bool:
        try:
            self.rooted.open_dir(parts)
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False

    def make_dir(self, parts: list[str]) -> int:
        return self.rooted.make_dirs(parts)

    def host_path(self, parts: list[str]) -> Path:
        """The real host path of the directory ``parts`` (created if missing)."""
        fd = self.make_dir(parts)
        return Path(os.readlink(f"/proc/self/fd/{fd}"))

    def copy_tree(self, source: Path, dest: list[str], contents_only: bool) -> None:
        """Copy ``source`` to ``dest`` (its contents into ``dest`` for a directory)."""
        for rel, path, st in _walk(source):
            if rel == "" and contents_only and stat.S_ISDIR(st.st_mode):
                self.make_dir(dest)
                continue
            self._put(dest + rel.split("/") if rel else dest, path, st)

    def _put(self, target: list[str], path: Path, st: os.stat_result) -> None:
        if not target:
            raise CopyError("cannot replace the root directory")
        parent = self.make_dir(target[:-1])
        name = target[-1]
        existing = _lstat_at(parent, name)
        mode = st.st_mode
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode) and stat.S_ISDIR(mode):
                return  # merge into the directory that is there
            if stat.S_ISDIR(existing.st_mode):
                shutil.rmtree(f"/proc/self/fd/{parent}/{name}")
            else:
                os.unlink(name, dir_fd=parent)
            self.rooted.invalidate()
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=parent)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(path), name, dir_fd=parent)
        elif stat.S_ISREG(mode):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=parent)
            try:
                with open(path, "rb", opener=_nofollow) as src:
                    while chunk := src.read(_CHUNK):
                        os.write(fd, chunk)
            finally:
                os.close(fd)
        else:
            return  # devices, fifos and sockets are not copied from a context
        os.chown(name, self.owner.uid, self.owner.gid, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            perm = self.chmod if self.chmod is not None else stat.S_IMODE(mode)
            os.chmod(name, perm, dir_fd=parent)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent, follow_symlinks=False)

    def write_file(self, target: list[str], data: bytes, mode: int) -> None:
        parent = self.make_dir(target[:-1])
        name = target[-1]
        existing = _lstat_at(parent, name)
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=parent)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.chown(name, self.owner.uid, self.owner.gid, dir_fd=parent, follow_symlinks=False)
        os.chmod(name, self.chmod if self.chmod is not None else mode, dir_fd=parent)


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def dest_parts(dest: str, workdir: str) -> tuple[list[str], bool]:
    """(components of the destination resolved against WORKDIR, whether it names a directory)."""
    as_dir = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
    full = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    return split_clean(full), as_dir


def copy_sources(dest: Destination, sources: list[Source], target: str, workdir: str, extract: bool) -> None:
    """Carry out one COPY/ADD of already resolved ``sources`` to ``target``."""
    parts, as_dir = dest_parts(target, workdir)
    if len(sources) > 1 and not as_dir:
        raise CopyError("When using COPY with more than one source file, the destination must be a directory "
                        "and end with a /")
    for source in sources:
        if source.is_dir:
            dest.copy_tree(source.path, parts, contents_only=True)
        elif extract and _is_archive(source.path):
            extract_archive(dest, source.path, parts)
        elif as_dir or dest.is_dir(parts):
            dest.copy_tree(source.path, [*parts, source.name or source.path.name], contents_only=False)
        else:
            dest.copy_tree(source.path, parts, contents_only=False)


def _is_archive(path: Path) -> bool:
    with open(path, "rb", opener=_nofollow) as f:
        head = f.read(512)
    if head.startswith(_ARCHIVE_MAGIC):
        return True
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def extract_archive(dest: Destination, archive: Path, parts: list[str]) -> None:
    """ADD of a local tar: its entries land under ``parts``, resolved inside the destination directory."""
    target = dest.host_path(parts)
    with open(archive, "rb", opener=_nofollow) as f:
        apply_layer(target, f, durable=False, whiteout_mode=WhiteoutMode.DELETE)


def heredoc_source(into: Path, name: str, data: str) -> Source:
    """``COPY <<NAME dest``: the heredoc as the file ``NAME`` under ``into`` (a fresh scratch dir).

    The name comes from the Dockerfile: it is cleaned lexically inside ``into``
    (BuildKit makes the file in a scratch state, where ``..`` stops at its
    root), so ``<<../../x`` is ``x`` there and never a host path.
    """
    parts = posixpath.normpath("/" + name).strip("/")
    if not parts:
        raise CopyError(f"invalid heredoc file name {name!r}")
    path = into.joinpath(*parts.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    path.chmod(0o644)
    return Source(name, posixpath.basename(parts), path, False)


def fetch_url(url: str, into: Path) -> Source:
    """ADD <url>: download to ``into``/<basename> (mode 0600, like Docker)."""
    name = posixpath.basename(urllib.parse.urlparse(url).path) or "download"
    path = into / name
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CopyError(f"failed to fetch {url}: {reason}") from None
    os.chmod(path, 0o600)
    return Source(url, name, path, False)

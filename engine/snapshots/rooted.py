"""Resolve paths inside a directory as if it were ``/``, with the kernel doing the work.

Every lookup goes through openat2(2) with RESOLVE_IN_ROOT: ``..`` stops at the
root and absolute symlinks restart at the root, exactly as they will inside the
container, so a symlink planted by a layer (``a -> /etc``, ``a -> ../../..``)
can never lead a later write out of the tree.  RESOLVE_NO_MAGICLINKS refuses
``/proc/self/...``-style jumps and RESOLVE_NO_XDEV refuses crossing into other
mounts.  Only *parent directories* are resolved this way; callers operate on the
final component with the ``*at`` calls and never follow it, so the last
component is never a way out either.  This is the same model as moby's
chrooted extractor and containerd's ``fs.RootPath``, without forking.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from engine.runtime import syscalls
from engine.snapshots.errors import LayerError

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS | syscalls.RESOLVE_NO_XDEV
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_CACHE_MAX = 512


def split_clean(name: str, entry: str | None = None) -> list[str]:
    """Lexically cleaned components of a tar member name, relative to the root.

    A leading ``/`` is dropped (the name is relative to the layer root, as in
    moby's ``filepath.Join(dest, hdr.Name)``); a ``..`` that would climb above
    the root is refused, as moby's ``breakoutError`` does.
    """
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise LayerError("path climbs out of the layer root", entry if entry is not None else name)
            parts.pop()
            continue
        parts.append(comp)
    return parts


class RootedDir:
    """An open directory whose descendants are looked up with RESOLVE_IN_ROOT.

    Directory fds are cached by path; :meth:`invalidate` must be called after
    anything is removed or replaced, since a cached path may then resolve
    differently.  Invalidated fds stay open until :meth:`release` (called
    between tar members), because the caller may still hold one: the parent
    of an entry it just replaced is still the right directory.
    """

    def __init__(self, path: Path, *, cross_mounts: bool = False) -> None:
        self.path = path
        self.fd = os.open(path, _DIR_FLAGS)
        # A container's view (docker cp) spans its volume mounts; a snapshot never does.
        self._resolve = _RESOLVE & ~syscalls.RESOLVE_NO_XDEV if cross_mounts else _RESOLVE
        self._cache: dict[str, int] = {}
        self._retired: list[int] = []

    def __enter__(self) -> RootedDir:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.invalidate()
        self.release()
        os.close(self.fd)

    def invalidate(self) -> None:
        """Forget every cached lookup (the fds are closed by the next :meth:`release`)."""
        self._retired.extend(self._cache.values())
        self._cache.clear()

    def release(self) -> None:
        """Close the fds :meth:`invalidate` retired; no fd handed out earlier may be used after this."""
        for fd in self._retired:
            os.close(fd)
        self._retired.clear()

    def open_dir(self, parts: list[str]) -> int:
        """An O_PATH fd of the directory at ``parts`` (resolved in the root); owned by the cache."""
        if not parts:
            return self.fd
        key = "/".join(parts)
        fd = self._cache.get(key)
        if fd is None:
            fd = syscalls.openat2(self.fd, key, _DIR_FLAGS, 0, self._resolve)
            if len(self._cache) >= _CACHE_MAX:
                self.invalidate()
            self._cache[key] = fd
        return fd

    def make_dirs(
        self, parts: list[str], mode: int = 0o755, replace: Callable[[int, str], bool] | None = None
    ) -> int:
        """Like ``mkdir -p`` inside the root; returns the directory's O_PATH fd.

        Missing directories are created where the kernel resolves them, so a
        parent that is a symlink is followed *inside* the root.  A component
        that exists but is not a directory (or a dangling symlink) fails,
        unless ``replace(parent_fd, name)`` turns it into a directory and
        returns True.
        """
        for i in range(1, len(parts) + 1):
            try:
                self.open_dir(parts[:i])
            except NotADirectoryError:
                if replace is None or not replace(self.open_dir(parts[: i - 1]), parts[i - 1]):
                    raise
                self.invalidate()
            except FileNotFoundError:
                parent = self.open_dir(parts[: i - 1])
                try:
                    os.mkdir(parts[i - 1], mode, dir_fd=parent)
                except FileExistsError as exc:
                    # It exists but did not resolve: a dangling symlink, whose
                    # target would have to be created somewhere we did not choose.
                    raise OSError(errno.ENOENT, "parent is a dangling symlink", "/".join(parts[:i])) from exc
                os.chmod(parts[i - 1], mode, dir_fd=parent)
        return self.open_dir(parts)


def proc_path(dir_fd: int, name: str) -> str:
    """A path naming ``name`` inside the directory ``dir_fd`` (for calls without ``dir_fd``, like xattrs).

    The ``/proc/self/fd`` magic link is followed to the directory we already
    hold; ``name`` itself must still be used without following it.
    """
    return f"/proc/self/fd/{dir_fd}/{name}" if name else f"/proc/self/fd/{dir_fd}"

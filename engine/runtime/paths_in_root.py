"""Resolving a container path inside the rootfs without escaping it.

An image can hold symlinks like ``/etc -> /host/etc`` or ``a -> ../../..``:
following them on the host would mount over host paths.  Each component is
resolved as if the rootfs were ``/`` (what runc does with
github.com/cyphar/filepath-securejoin), with the same 40-link limit as the
kernel's path walk.
"""

from __future__ import annotations

import errno
import os

_MAX_LINKS = 40


def resolve_in_root(root: str, path: str) -> str:
    """Host path for container ``path``: symlinks followed, never outside ``root``."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
                resolved.append(part)
                continue
            raise
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", os.path.join(root, path))
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)


def ensure_dir(path: str) -> None:
    """os.makedirs(path, 0o755, exist_ok=True) in one stat when the directory is there (the usual case
    for a rootfs's mount points: makedirs stats the parent, tries mkdir, then stats the path)."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o755, exist_ok=True)


def resolve_parent_in_root(root: str, path: str) -> str:
    """Host path for container ``path`` with only its *directory* resolved (the last name kept).

    For entries the runtime replaces (device nodes, /dev symlinks): a symlink
    at ``path`` itself is removed and replaced, never followed to unlink or
    overwrite the file it points at.
    """
    parent, name = os.path.split(path.rstrip("/"))
    if name in ("", ".", ".."):
        return resolve_in_root(root, path)
    return os.path.join(resolve_in_root(root, parent or "/"), name)


def make_target(path: str, is_dir: bool) -> None:
    """Create a mount point: a directory, or an empty file for file bind mounts."""
    if is_dir:
        ensure_dir(path)
        return
    ensure_dir(os.path.dirname(path))
    if not os.path.lexists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))

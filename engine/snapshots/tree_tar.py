"""Tar a tree read through directory fds (`docker cp` out of a container, `export`, `berth cp` into one).

Nothing is looked up by a path string below the starting directory: each
directory is opened with ``O_NOFOLLOW`` relative to its parent's fd and each
entry is read through ``/proc/self/fd/<dir>/<name>`` without following it, so
a tree that changes while it is read (a running container swapping a
directory for a symlink, CVE-2018-15664) cannot send the reader elsewhere.
Order: depth first, siblings in byte order (Go's filepath.Walk).  Entries are
written by :class:`engine.snapshots.tar_writer.LayerTarWriter` (PAX, numeric
owners, xattrs, hardlinks kept).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path

from engine.snapshots.rooted import proc_path
from engine.snapshots.tar_writer import LayerTarWriter

READ_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def lstat_at(parent_fd: int, base: str) -> os.stat_result | None:
    """lstat of ``base`` in ``parent_fd`` (the directory itself when ``base`` is ""); None if absent."""
    try:
        if not base:
            return os.fstat(parent_fd)
        return os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def add_tree(tar: LayerTarWriter, parent_fd: int, base: str, name: str, path: str,
             mounts: set[str] | None) -> None:
    """``base`` in ``parent_fd`` as entry ``name``, with everything below it when it is a directory.

    ``path`` is the tree's own path for it (in the container); a directory on
    another filesystem is entered only when its path is in ``mounts`` (None:
    always).
    """
    st = lstat_at(parent_fd, base)
    if st is None:
        raise FileNotFoundError(path)
    tar.add(name, Path(proc_path(parent_fd, base)), st)
    if not stat.S_ISDIR(st.st_mode):
        return
    dir_fd = os.open(base or ".", READ_DIR, dir_fd=parent_fd)
    try:
        add_children(tar, dir_fd, name, path, st.st_dev, mounts)
    finally:
        os.close(dir_fd)


def add_children(tar: LayerTarWriter, top_fd: int, top_name: str, top_path: str, top_dev: int,
                 mounts: set[str] | None) -> None:
    """Everything below the directory ``top_fd`` (entries named under ``top_name``; "" for none)."""
    stack: list[tuple[int, str, str, int, Iterator[str]]] = [
        (top_fd, top_name, top_path, top_dev, iter(sorted(os.listdir(top_fd), key=os.fsencode)))]
    try:
        while stack:
            dir_fd, name, dir_path, dev, names = stack[-1]
            child = next(names, None)
            if child is None:
                stack.pop()
                if dir_fd != top_fd:
                    os.close(dir_fd)
                continue
            st = lstat_at(dir_fd, child)
            if st is None or stat.S_ISSOCK(st.st_mode):
                continue  # gone since listdir, or a socket (a tar cannot hold it)
            child_name = posixpath.join(name, child)  # "a/b", "./b", "/b" (under the root's "/"), or "b"
            child_path = posixpath.join(dir_path, child)
            tar.add(child_name, Path(proc_path(dir_fd, child)), st)
            if not stat.S_ISDIR(st.st_mode):
                continue
            if st.st_dev != dev and mounts is not None and child_path not in mounts:
                continue  # /proc, /sys, /dev of a running container: not its files
            sub = os.open(child, READ_DIR, dir_fd=dir_fd)
            stack.append((sub, child_name, child_path, st.st_dev, iter(sorted(os.listdir(sub), key=os.fsencode))))
    finally:
        for dir_fd, *_ in stack:
            if dir_fd != top_fd:
                os.close(dir_fd)

"""`berth cp`'s local half: docker's path rules and the host side of the tar (moby pkg/archive copy.go).

The rules, as the docker CLI applies them:

* ``SRC/.`` copies the *content* of a directory; ``SRC`` copies the directory itself.
* A destination that exists as a directory receives the source inside it;
  one that does not exist is *created as* the source (file or directory),
  provided its parent exists; ``DEST/`` (or ``DEST/.``) asserts a directory,
  so a file source then fails ("no such directory").
* A directory never replaces a file nor the reverse ("cannot copy directory").
* Symlinks: without ``-L`` a source symlink is copied as a link (only its
  parent directories are resolved); with ``-L`` its target is copied under
  the link's name.  A destination symlink is followed.

Tars going up are read from the host through directory fds
(:mod:`engine.snapshots.tree_tar`); tars coming down are unpacked by
:class:`engine.snapshots.copy_extract.CopyExtractor` inside the destination
directory, so no entry can land outside it.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import threading
from collections.abc import Iterable, Iterator
from typing import IO

READ_CHUNK = 256 * 1024


class CopyError(Exception):
    """A copy docker's rules refuse (printed as one line)."""


class CopyInfo:
    """moby archive.CopyInfo."""

    def __init__(self, path: str, exists: bool = False, is_dir: bool = False, rebase_name: str = "") -> None:
        self.path = path
        self.exists = exists
        self.is_dir = is_dir
        self.rebase_name = rebase_name


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` → (container, path); a local path → ("", path) (docker/cli splitCpArg)."""
    if arg.startswith("/"):
        return "", arg
    container, colon, path = arg.partition(":")
    if not colon or container.startswith("."):
        return "", arg  # no colon, or an explicit relative path like ./file:name.txt
    return container, path


def go_base(path: str) -> str:
    """Go's filepath.Base: trailing slashes dropped, "/" for the root, "." for ""."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    return posixpath.basename(stripped) if stripped else "/"


def specifies_current_dir(path: str) -> bool:
    return go_base(path) == "."


def asserts_directory(path: str) -> bool:
    return path.endswith("/") or specifies_current_dir(path)


def preserve_trailing(cleaned: str, original: str) -> str:
    """archive.PreserveTrailingDotOrSeparator."""
    if specifies_current_dir(original) and not specifies_current_dir(cleaned):
        cleaned = cleaned.rstrip("/") + "/."
    if original.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def resolve_local_path(path: str) -> str:
    """Absolute, keeping a trailing ``/`` or ``/.`` (docker/cli resolveLocalPath)."""
    return preserve_trailing(os.path.abspath(path), path)


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """archive.SplitPathDirEntry: ("/a", "b") for "/a/b/", ("/a/b", ".") for "/a/b/."."""
    cleaned = posixpath.normpath(path)
    if specifies_current_dir(path):
        cleaned = posixpath.join(cleaned, ".")
    return posixpath.dirname(cleaned), go_base(cleaned)


def rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """archive.GetRebaseName: keep a trailing ``/.`` or ``/``, and the name the user typed."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if path.endswith("/") and not resolved.endswith("/"):
        resolved += "/"
    return resolved, go_base(path) if go_base(path) != go_base(resolved) else ""


def join_link(path: str, link_target: str) -> str:
    """A relative symlink target joined with the link's directory."""
    if link_target.startswith("/"):
        return link_target
    return posixpath.join(split_path_dir_entry(path)[0], link_target)


# ---------------------------------------------------------------- host source (to a container)


def source_info(path: str, follow_link: bool) -> CopyInfo:
    """archive.CopyInfoSourcePath: the host source, its parents' symlinks resolved (all of them with -L)."""
    if follow_link:
        resolved, name = rebase_name(path, os.path.realpath(path))
    else:
        directory, base = posixpath.split(path)
        resolved = os.path.realpath(directory or ".") + "/" + base
        name = go_base(path) if path.endswith("/") and go_base(path) != go_base(resolved) else ""
    try:
        st = os.lstat(resolved)
    except OSError as exc:
        raise CopyError(f"lstat {resolved.rstrip('/')}: {(exc.strerror or str(exc)).lower()}") from exc
    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), name)


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, str | None]:
    """archive.PrepareArchiveCopy: (directory to extract into, new name for the source's base or None)."""
    dst_dir, dst_base = split_path_dir_entry(dst.path)
    if dst.exists and dst.is_dir:
        return dst.path, None
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if dst.exists or src.is_dir:
        return dst_dir, dst_base
    if asserts_directory(dst.path):
        raise CopyError("no such directory")
    return dst_dir, dst_base


def host_tar_chunks(src: CopyInfo, top_name: str | None) -> Iterator[bytes]:
    """The tar of a host source as it is written (archive.TarResourceRebase), entries under ``top_name``
    (default: the source's base; children of ``dir/.`` are ``./name``)."""
    from engine.snapshots.tar_writer import LayerTarWriter
    from engine.snapshots.tree_tar import add_tree

    source_dir, source_base = split_path_dir_entry(src.path)
    name = top_name or src.rebase_name or source_base
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out:
                parent = os.open(source_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    with LayerTarWriter(out) as tar:
                        add_tree(tar, parent, "" if source_base == "." else source_base, name, src.path, None)
                finally:
                    os.close(parent)
        except BrokenPipeError:
            pass  # the upload stopped (the engine refused it): its answer says why
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=produce, name="cp-tar", daemon=True)
    worker.start()
    try:
        while chunk := os.read(read_fd, READ_CHUNK):
            yield chunk
    finally:
        os.close(read_fd)
        worker.join()
    if errors:
        raise CopyError(f"cannot read {src.path}: {errors[0]}")


# ---------------------------------------------------------------- host destination (from a container)


def destination_info(path: str) -> CopyInfo:
    """archive.CopyInfoDestinationPath: a symlink destination is followed; a missing one needs its parent."""
    original = path
    for _ in range(11):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            parent = split_path_dir_entry(path)[0]
            try:
                parent_st = os.stat(parent)
            except OSError as exc:
                raise CopyError(f"stat {parent}: {(exc.strerror or str(exc)).lower()}") from exc
            if not stat.S_ISDIR(parent_st.st_mode):
                raise CopyError("not a directory") from None
            return CopyInfo(path)
        if not stat.S_ISLNK(st.st_mode):
            return CopyInfo(path, True, stat.S_ISDIR(st.st_mode))
        path = join_link(path, os.readlink(path))
    raise CopyError(f"too many symlinks in {original}")


def extract_to_host(chunks: Iterable[bytes], src: CopyInfo, dst_path: str) -> None:
    """archive.CopyTo: unpack a container's tar at ``dst_path`` by docker's rules (owned by the caller)."""
    from pathlib import Path

    from engine.snapshots.copy_extract import CopyExtractor
    from engine.snapshots.errors import LayerError
    from engine.snapshots.rooted import RootedDir

    dst = destination_info(dst_path)
    target_dir, new_base = prepare_copy(src, dst)
    # Entries arrive named after the base of the path asked for (a link's target with -L);
    # they take the link's name, then the destination's when it is created by the copy.
    served_base = split_path_dir_entry(src.path)[1]
    new_name = new_base if new_base is not None else src.rebase_name or None
    rebase = (served_base, new_name) if new_name is not None else None
    try:
        with RootedDir(Path(target_dir), cross_mounts=True) as root:
            CopyExtractor(root, [], no_overwrite_dir_non_dir=True, chown=(os.geteuid(), os.getegid()),
                          rebase=rebase).run(as_stream(chunks))
    except LayerError as exc:
        raise CopyError(str(exc)) from exc


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (a streamed response body)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def as_stream(chunks: Iterable[bytes]) -> IO[bytes]:
    return io.BufferedReader(ChunkReader(chunks), READ_CHUNK)

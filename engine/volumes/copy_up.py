"""Copy-up: an image's content at a volume's mount point seeds a new, empty volume.

Docker does this the first time a container uses an empty volume (moby
daemon/volumes_unix.go copyExistingContents), unless `nocopy` was asked for.
The copy keeps owners, modes (setuid included), extended attributes, times,
hard links, device nodes and symlinks -- symlinks are recreated, never followed.

Everything is done by file descriptor.  The start path is opened with
openat2(RESOLVE_IN_ROOT), so a symlink on the way (`/data -> /etc`,
`/data -> ../../..`) resolves inside the image root, as it would inside the
container; below it each entry is opened with O_NOFOLLOW relative to its
parent's fd, so nothing the image holds can lead the copy out of either tree.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from pathlib import Path

from engine.runtime import syscalls

log = logging.getLogger(__name__)

_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
# Attributes an unprivileged namespace or another LSM may refuse; their loss is logged, not fatal.
_XATTR_SKIPPABLE = (errno.ENOTSUP, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP)
_CHUNK = 1 << 20


def is_empty(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None


def empty_directory(directory: Path) -> None:
    """Delete what a failed copy left; the directory was empty before it, so nothing below is a mount."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def copy_up(image_root: Path, path_in_image: str, dest: Path) -> bool:
    """Copy ``path_in_image`` (resolved inside ``image_root``) into the empty directory ``dest``.

    Returns False when there was nothing to copy: the path does not exist in
    the image or is not a directory (Docker copies only directories).
    """
    rel = "/".join(p for p in path_in_image.split("/") if p) or "."
    root_fd = os.open(image_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            src_fd = syscalls.openat2(root_fd, rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, 0, _RESOLVE)
        except (FileNotFoundError, NotADirectoryError):
            return False
    finally:
        os.close(root_fd)
    try:
        dst_fd = os.open(dest, _DIR_OPEN)
        try:
            _Copier(dst_fd).copy_dir(src_fd, dst_fd, "")
            # The volume's root takes the owner and mode of the image directory (moby copyOwnership).
            _copy_metadata(os.fstat(src_fd), src_fd, dst_fd)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return True


class _Copier:
    def __init__(self, dest_root_fd: int) -> None:
        self.dest_root_fd = dest_root_fd
        self.links: dict[tuple[int, int], str] = {}  # (dev, ino) of the source → first copy, rel. to dest root

    def copy_dir(self, src_fd: int, dst_fd: int, rel: str) -> None:
        with os.scandir(src_fd) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
            child_rel = f"{rel}/{name}" if rel else name
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                self._copy_subdir(src_fd, dst_fd, name, child_rel)
            elif stat.S_ISSOCK(mode):
                log.info("copy-up skips socket %s (sockets are not content)", child_rel)
            elif st.st_nlink > 1 and (st.st_dev, st.st_ino) in self.links:
                os.link(self.links[(st.st_dev, st.st_ino)], name, src_dir_fd=self.dest_root_fd,
                        dst_dir_fd=dst_fd, follow_symlinks=False)
            else:
                if stat.S_ISREG(mode):
                    self._copy_file(src_fd, dst_fd, name, st)
                elif stat.S_ISLNK(mode):
                    os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
                    _copy_metadata_by_name(st, src_fd, dst_fd, name)
                else:  # character/block device, fifo
                    os.mknod(name, mode, st.st_rdev, dir_fd=dst_fd)
                    _copy_metadata_by_name(st, src_fd, dst_fd, name)
                if st.st_nlink > 1:
                    self.links[(st.st_dev, st.st_ino)] = child_rel

    def _copy_subdir(self, src_fd: int, dst_fd: int, name: str, rel: str) -> None:
        os.mkdir(name, 0o700, dir_fd=dst_fd)  # private until its real mode is set, after its content
        child_src = os.open(name, _DIR_OPEN, dir_fd=src_fd)
        try:
            child_dst = os.open(name, _DIR_OPEN, dir_fd=dst_fd)
            try:
                self.copy_dir(child_src, child_dst, rel)
                _copy_metadata(os.fstat(child_src), child_src, child_dst)
            finally:
                os.close(child_dst)
        finally:
            os.close(child_src)

    def _copy_file(self, src_dir: int, dst_dir: int, name: str, st: os.stat_result) -> None:
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
        try:
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=dst_dir)
            try:
                while os.sendfile(dst, src, None, _CHUNK) > 0:
                    pass
                _copy_metadata(st, src, dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)


def _copy_metadata(st: os.stat_result, src_fd: int, dst_fd: int) -> None:
    """Owner, then mode (chown clears setuid/setgid), xattrs, times -- on open fds."""
    os.fchown(dst_fd, st.st_uid, st.st_gid)
    os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
    _copy_xattrs(src_fd, dst_fd)
    os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_metadata_by_name(st: os.stat_result, src_dir: int, dst_dir: int, name: str) -> None:
    """For entries that cannot be opened (symlinks, devices): by name, never following the last component."""
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_dir)
    # listxattr has no dir_fd form: name the entry through the parent's /proc/self/fd link.
    _copy_xattrs(f"/proc/self/fd/{src_dir}/{name}", f"/proc/self/fd/{dst_dir}/{name}")
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)


def _copy_xattrs(src: int | str, dst: int | str) -> None:
    try:
        keys = os.listxattr(src, follow_symlinks=False) if isinstance(src, str) else os.listxattr(src)
    except OSError as exc:
        if exc.errno in _XATTR_SKIPPABLE:
            return
        raise
    for key in keys:
        try:
            if isinstance(src, str) and isinstance(dst, str):
                os.setxattr(dst, key, os.getxattr(src, key, follow_symlinks=False), follow_symlinks=False)
            elif isinstance(src, int) and isinstance(dst, int):
                os.setxattr(dst, key, os.getxattr(src, key))
        except OSError as exc:
            if exc.errno not in _XATTR_SKIPPABLE:
                raise
            log.warning("copy-up could not keep xattr %s: %s", key, exc.strerror)

"""A container's filesystem from the outside: `docker cp` (archive), `export` and `diff` (changes).

Views (what a path means):

* **container view** (cp): what the container's processes see, volumes and
  binds included.  Running or paused: ``/proc/<pid>/root``, whose path walk
  goes through the container's own mount namespace.  Stopped or created: a
  worker thread unshares a private mount namespace (``CLONE_FS|CLONE_NEWNS``,
  everything made private first), mounts the rootfs snapshot and binds the
  record's volumes and binds on it; the namespace dies with the thread, so
  no mount is ever left behind on the host (moby mounts volumes the same way,
  in the daemon's namespace).  The API holds the container's lock for the
  whole operation, and `start` takes it too: the rootfs is never mounted by a
  start and a copy at once (two overlays on one upper dir).  A run that just
  ended may still have its rootfs mounted: that mount is bound, not doubled.
* **rootfs view** (export): the overlay alone, no volumes (moby exports the
  RW layer's mount): the running container's ``rootfs`` mount, or the same
  private-namespace mount when it is stopped.

Safety: every lookup in a view goes through openat2(RESOLVE_IN_ROOT) from the
view's root fd (:mod:`engine.snapshots.rooted`), trees are read with
``O_NOFOLLOW`` dir fds (no host path is re-walked, so a container swapping a
directory for a symlink mid-copy cannot redirect the read: CVE-2018-15664),
and tars are extracted by :mod:`engine.snapshots.layer_apply`'s extractor
with names rebased under the destination (``..`` breakouts and escaping
relative symlinks refused like moby's ``archive.Unpack``; absolute symlinks
resolve inside the container, never on the host).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import stat
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

from engine.containers.errors import ContainerError
from engine.containers.json_log import rfc3339_nano
from engine.containers.records import ContainerRecord
from engine.runtime import syscalls
from engine.runtime.paths_in_root import resolve_in_root
from engine.snapshots import whiteouts
from engine.snapshots.copy_extract import CopyExtractor
from engine.snapshots.layer_diff import _is_opaque, lower_lstat, walk_tree
from engine.snapshots.mounts import Mount, in_unshared_thread, mount
from engine.snapshots.rooted import RootedDir, proc_path, split_clean
from engine.snapshots.tar_writer import LayerTarWriter
from engine.snapshots.tree_tar import READ_DIR, add_children, add_tree, lstat_at
from engine.volumes.mount_spec import MountSpec

log = logging.getLogger(__name__)

T = TypeVar("T")

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
_TAR_BUFSIZE = 64 << 10

# Go's os.FileMode type bits (io/fs), what X-Docker-Container-Path-Stat's "mode" carries.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


class PathNotFound(ContainerError):
    """A path that does not exist in the container (404, moby's containerFileNotFound)."""

    def __init__(self, path: str, container: str) -> None:
        super().__init__(f"Could not find the file {path} in container {container}")


class InvalidPath(ContainerError):
    """A path or archive the operation cannot use (400)."""


@dataclass(frozen=True)
class PathStat:
    """moby's container.PathStat."""

    name: str
    size: int
    mode: int  # Go FileMode bits
    mtime: str
    link_target: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}


@dataclass(frozen=True)
class Change:
    path: str
    kind: int  # 0 modified, 1 added, 2 deleted (moby archive.ChangeType)


def go_file_mode(mode: int) -> int:
    """st_mode → Go's os.FileMode (permission bits plus type and special bits)."""
    out = stat.S_IMODE(mode) & 0o777
    fmt = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE, stat.S_IFSOCK: _GO_SOCKET,
            stat.S_IFBLK: _GO_DEVICE, stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(fmt, 0)
    if mode & stat.S_ISUID:
        out |= _GO_SETUID
    if mode & stat.S_ISGID:
        out |= _GO_SETGID
    if mode & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def container_abs_path(path: str) -> str:
    """moby's ResolvePath first step: clean ``/`` + path, keeping a trailing ``/`` or ``/.``
    (archive.PreserveTrailingDotOrSeparator: they ask for the directory a symlink points at)."""
    cleaned = posixpath.normpath("/" + path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/.") and cleaned != "/":
        return cleaned + "/."
    if path.endswith("/") and cleaned != "/":
        return cleaned + "/"
    return cleaned


def go_base(path: str) -> str:
    """Go's filepath.Base: trailing slashes dropped, "/" for the root."""
    stripped = path.rstrip("/")
    return posixpath.basename(stripped) if stripped else "/"


# ---------------------------------------------------------------- views


class ContainerFilesystem:
    """The archive/export/changes operations over one daemon's containers (blocking: run in threads)."""

    def __init__(self, service: Any) -> None:
        # Callers hold the container's lock (service.locks, engine/containers/container_locks.py) for a
        # whole operation: a start cannot mount the rootfs while a copy has it mounted, nor two copies.
        self.service = service  # engine.containers.service.ContainerService

    def _running_pid(self, record: ContainerRecord) -> int:
        if record.state.status in ("running", "paused") and record.state.pid > 0:
            return record.state.pid
        return 0

    def in_view(self, record: ContainerRecord, fn: Callable[[int, set[str]], T], *, volumes: bool = True) -> T:
        """``fn(root_fd, mount_targets)`` with the container's view open (see the module doc).

        ``mount_targets`` are the container paths a tree walk may descend into
        although they are other filesystems (the record's mounts).
        """
        targets = {MountSpec(**m).target for m in record.mounts} if volumes else set()
        fd = self._open_running_root(record, volumes)
        if fd is not None:
            try:
                return fn(fd, targets)
            finally:
                os.close(fd)
        return _in_private_namespace(lambda: self._mounted_view(record, fn, targets, volumes))

    def _open_running_root(self, record: ContainerRecord, volumes: bool) -> int | None:
        """The running container's root (its own view, or the bare rootfs mount); None when it is not running.

        The pid comes from the record: it is trusted only if its root is this
        container's rootfs mount (a pid reused by another process after the
        container died must never lend us *its* root -- the host's).
        """
        pid = self._running_pid(record)
        if not pid:
            return None
        rootfs = self.service.paths.exec_dir(record.id) / "rootfs"
        try:
            fd = os.open(f"/proc/{pid}/root" if volumes else rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st, expected = os.fstat(fd), os.stat(rootfs)
            if (st.st_dev, st.st_ino) == (expected.st_dev, expected.st_ino):
                return fd
        except OSError:
            pass
        os.close(fd)
        return None

    def _mounted_view(self, record: ContainerRecord, fn: Callable[[int, set[str]], T], targets: set[str],
                      volumes: bool) -> T:
        base = self.service.paths.exec_root / "fsview"
        base.mkdir(parents=True, exist_ok=True)
        where = Path(tempfile.mkdtemp(prefix=f"{record.id[:12]}-", dir=base))
        rootfs = self.service.paths.exec_dir(record.id) / "rootfs"
        try:
            if os.path.ismount(rootfs):
                # The run ended but its rootfs is not unmounted yet (the exit's cleanup is on its way):
                # bind that mount, one overlay superblock, rather than a second overlay on the same upper.
                mount([Mount("bind", str(rootfs))], where)
            else:
                mount(self.service.snapshotter.mounts(record.snapshot_key), where)
            try:  # detached with everything bound below it (and the namespace goes with the thread anyway)
                fd = os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    if volumes:
                        self._bind_mounts(record, fd)
                    return fn(fd, targets)
                finally:
                    os.close(fd)
            finally:
                syscalls.umount2(str(where), syscalls.MNT_DETACH)
        finally:
            os.rmdir(where)

    def _bind_mounts(self, record: ContainerRecord, root_fd: int) -> None:
        """The record's volumes and binds on the private mount, shallowest first (like the runtime)."""
        specs = sorted((MountSpec(**m) for m in record.mounts), key=lambda s: s.target.count("/"))
        with RootedDir(Path(proc_path(root_fd, "")), cross_mounts=True) as root:
            for spec in specs:
                if spec.type == "tmpfs":
                    continue  # a stopped container's tmpfs holds nothing
                source = spec.source
                if spec.type == "volume":
                    volumes = self.service.volumes
                    source = str(volumes.subpath(spec.source, spec.subpath) if spec.subpath
                                 else volumes.mount_for(spec.source))
                parts = split_clean(spec.target)
                if not parts or not os.path.exists(source):
                    continue
                options = ("rbind", "ro") if spec.read_only else ("rbind",)
                try:
                    if os.path.isdir(source):
                        mount([Mount("bind", source, options)], Path(proc_path(root.make_dirs(parts), "")))
                    else:
                        parent = root.make_dirs(parts[:-1])
                        with contextlib.suppress(FileExistsError):
                            os.close(os.open(parts[-1], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW,
                                             0o644, dir_fd=parent))
                        # Pinned without following: mount(2) would follow a symlink planted there.
                        file_fd = os.open(parts[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                        try:
                            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                                raise OSError(errno.EINVAL, "the mount point is not a regular file", spec.target)
                            mount([Mount("bind", source, options)], Path(proc_path(file_fd, "")))
                        finally:
                            os.close(file_fd)
                except OSError as exc:
                    # Going on would read or write the rootfs *under* the mount point: the wrong files.
                    raise ContainerError(f"cannot mount {spec.target} of container {record.id[:12]} for the "
                                         f"copy: {exc.strerror or exc}") from exc
                root.invalidate()
                root.release()

    # ---------------------------------------------------------- stat

    def stat_path(self, record: ContainerRecord, path: str) -> PathStat:
        return self.in_view(record, lambda fd, _targets: _stat_in(fd, record, path))

    # ---------------------------------------------------------- GET archive

    def write_archive(self, record: ContainerRecord, path: str, out: BinaryIO) -> None:
        """The tar `GET /containers/{id}/archive` streams (moby containerArchivePath)."""

        def run(root_fd: int, targets: set[str]) -> None:
            abs_path = container_abs_path(path)
            parent_fd, base = _open_parent(root_fd, record, abs_path)
            try:
                rebase = go_base(abs_path)
                with LayerTarWriter(out) as tar:
                    # moby rebases the root to "" (entries "/", "/bin"...), which the CLI prefixes with its
                    # destination's name.
                    add_tree(tar, parent_fd, base, rebase, posixpath.normpath(abs_path), targets)
            finally:
                os.close(parent_fd)

        self.in_view(record, run)

    # ---------------------------------------------------------- PUT archive

    def extract_archive(self, record: ContainerRecord, path: str, stream: IO[bytes], *,
                        no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
        """Unpack the tar ``stream`` into the directory ``path`` (moby containerExtractToDir)."""

        def run(root_fd: int, _targets: set[str]) -> None:
            abs_path = container_abs_path(path)
            # Unlike stat and GET, the last element is followed too: extracting to a link to a directory works.
            try:
                fd = syscalls.openat2(root_fd, abs_path.lstrip("/") or ".", os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    raise PathNotFound(abs_path, record.name.lstrip("/") or record.id) from exc
                raise
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    raise InvalidPath("extraction point is not a directory")
            finally:
                os.close(fd)
            dest = _resolve_lexically(root_fd, abs_path)
            self._check_writable(record, dest)
            chown = None
            if copy_uid_gid:
                from engine.containers.users import resolve_user

                user = resolve_user(proc_path(root_fd, ""), str(record.config.get("User") or ""))
                chown = (user.uid, user.gid)
            with RootedDir(Path(proc_path(root_fd, "")), cross_mounts=True) as root:
                CopyExtractor(root, split_clean(dest), no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                              chown=chown).run(stream)

        self.in_view(record, run)

    def _check_writable(self, record: ContainerRecord, dest: str) -> None:
        """moby checkIfPathIsInAVolume + the read-only rootfs rule."""
        best: MountSpec | None = None
        for raw in record.mounts:
            spec = MountSpec(**raw)
            if (dest == spec.target or dest.startswith(spec.target.rstrip("/") + "/")) and (
                    best is None or len(spec.target) > len(best.target)):
                best = spec
        if best is not None:
            if best.read_only:
                raise InvalidPath("mounted volume is marked read-only")
            return
        if record.host_config.get("ReadonlyRootfs"):
            raise InvalidPath("container rootfs is marked read-only")

    # ---------------------------------------------------------- export

    def write_export(self, record: ContainerRecord, out: BinaryIO) -> None:
        """The whole rootfs as the container sees it, without its volumes (moby ContainerExport)."""

        def run(root_fd: int, _targets: set[str]) -> None:
            with LayerTarWriter(out) as tar:
                dir_fd = os.open(".", READ_DIR, dir_fd=root_fd)
                try:
                    add_children(tar, dir_fd, "", "/", os.fstat(dir_fd).st_dev, set())
                finally:
                    os.close(dir_fd)

        self.in_view(record, run, volumes=False)

    # ---------------------------------------------------------- changes

    def changes(self, record: ContainerRecord) -> list[Change]:
        return snapshot_changes(self.service.snapshotter, record.snapshot_key)


def _in_private_namespace(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread with its own mount namespace (gone, with its mounts, when the thread ends)."""

    def body() -> T:
        # Nothing mounted here may propagate back to the host's namespace.
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        return fn()

    return in_unshared_thread(syscalls.CLONE_FS | syscalls.CLONE_NEWNS, body, "container-fs-view")


# ---------------------------------------------------------------- lookups


def _open_parent(root_fd: int, record: ContainerRecord, abs_path: str) -> tuple[int, str]:
    """(O_PATH fd of the directory holding the target, the target's name or "" for the directory itself)."""
    directory, base = posixpath.split(abs_path)
    if base == ".":
        base = ""
    try:
        fd = syscalls.openat2(root_fd, directory.lstrip("/") or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                              _RESOLVE)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise PathNotFound(abs_path, record.name.lstrip("/") or record.id) from exc
        raise
    if base and lstat_at(fd, base) is None:
        os.close(fd)
        raise PathNotFound(abs_path, record.name.lstrip("/") or record.id)
    return fd, base


def _resolve_lexically(root_fd: int, abs_path: str) -> str:
    """The container path ``abs_path`` leads to, every symlink followed inside the root."""
    root = proc_path(root_fd, "")
    rel = os.path.relpath(resolve_in_root(root, abs_path), root)
    return "/" if rel == "." else "/" + rel


def _stat_in(root_fd: int, record: ContainerRecord, path: str) -> PathStat:
    abs_path = container_abs_path(path)
    parent_fd, base = _open_parent(root_fd, record, abs_path)
    try:
        st = lstat_at(parent_fd, base)
        assert st is not None
    finally:
        os.close(parent_fd)
    link_target = _resolve_lexically(root_fd, abs_path) if stat.S_ISLNK(st.st_mode) else ""
    return PathStat(name=go_base(abs_path), size=st.st_size, mode=go_file_mode(st.st_mode),
                    mtime=_go_time(st.st_mtime_ns), link_target=link_target)


def _go_time(ns: int) -> str:
    """Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros of the fraction dropped)."""
    text = rfc3339_nano(ns)
    main, _, frac = text[:-1].partition(".")
    frac = frac.rstrip("0")
    return f"{main}.{frac}Z" if frac else f"{main}Z"


# ---------------------------------------------------------------- changes


# Mount points the runtime makes in the rootfs at start.  dockerd keeps them in
# the container's "init" layer, under the RW layer, so `docker diff` never
# lists them (moby daemon/initlayer + layer/init.go).
RUNTIME_PATHS = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab", "/.dockerenv",
                           "/dev/console", "/dev/pts", "/dev/shm", "/proc", "/sys", "/dev"})


def snapshot_changes(snapshotter: Any, key: str) -> list[Change]:
    """What the active snapshot ``key`` changed over its parent, in `docker diff`'s terms and order."""
    if hasattr(snapshotter, "layer_dirs"):  # overlay: the upper dir is the change set
        lowers, upper = snapshotter.layer_dirs(key)
        return upper_changes(lowers, upper)
    if hasattr(snapshotter, "layer_trees"):  # native: full trees, compared by the snapshotter's own differ
        parent, _own = snapshotter.layer_trees(key)
        with tempfile.TemporaryFile() as spool:
            snapshotter.diff(key, spool)
            spool.seek(0)
            return tar_changes(spool, parent)
    raise InvalidPath(f"container changes are not available with {type(snapshotter).__name__}")


def tar_changes(layer: IO[bytes], parent: Path | None) -> list[Change]:
    """Changes from a layer tar (``.wh.`` entries are deletions) against the parent's full tree."""
    changes: list[Change] = []
    recorded: set[str] = set()
    with tarfile.open(fileobj=layer, mode="r|") as tar:
        for member in tar:
            rel = member.name.strip("/").removeprefix("./")
            directory, _, base = rel.rpartition("/")
            victim = whiteouts.whited_out_name(base)
            if victim is not None:
                rel = f"{directory}/{victim}" if directory else victim
            elif base.startswith(whiteouts.WHITEOUT_PREFIX):
                continue  # an opaque marker: its directory is listed on its own
            cpath = "/" + rel
            if cpath in RUNTIME_PATHS or cpath in recorded:
                continue
            existed = parent is not None and lower_lstat([parent], rel) is not None  # no symlink followed
            kind = 2 if victim is not None else 0 if existed else 1
            parent_path = posixpath.dirname(cpath)
            if parent_path != "/" and parent_path not in recorded:
                changes.append(Change(parent_path, 0))
                recorded.add(parent_path)
            changes.append(Change(cpath, kind))
            recorded.add(cpath)
    return changes


def upper_changes(lowers: list[Path], upper: Path) -> list[Change]:
    """moby archive.OverlayChanges over one overlay upper dir: walk order, parents marked modified.

    The runtime's own mount points are left out (see RUNTIME_PATHS), and so is
    a directory that is in the upper only because of them.
    """
    changes: list[Change] = []
    changed_dirs: set[str] = set()
    for rel, path, st in walk_tree(upper):
        cpath = "/" + rel
        if cpath in RUNTIME_PATHS or (stat.S_ISDIR(st.st_mode) and _only_runtime_paths(lowers, upper, rel, st)):
            continue
        if whiteouts.is_overlay_whiteout(st) or (stat.S_ISDIR(st.st_mode) and _is_opaque(path)):
            kind = 2
        else:
            kind = 1
            lower_st = lower_lstat(lowers, rel)
            if lower_st is not None:
                if (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(lower_st.st_mode) and st.st_size == lower_st.st_size
                        and st.st_mode == lower_st.st_mode and st.st_mtime_ns == lower_st.st_mtime_ns):
                    continue  # only there as the parent of a change
                kind = 0
        if stat.S_ISDIR(st.st_mode):
            changed_dirs.add(cpath)
        if kind in (1, 2):
            parent = posixpath.dirname(cpath)
            if parent != "/" and parent not in changed_dirs:
                changes.append(Change(parent, 0))
                changed_dirs.add(parent)
        changes.append(Change(cpath, kind))
    return changes


def _only_runtime_paths(lowers: list[Path], upper: Path, rel: str, st: os.stat_result) -> bool:
    """A directory copied up only to hold runtime mount points (its mode and owner as in the lowers)."""
    prefix = "/" + rel + "/"
    if not any(p.startswith(prefix) for p in RUNTIME_PATHS):
        return False
    lower_st = lower_lstat(lowers, rel)
    if lower_st is None or (lower_st.st_mode, lower_st.st_uid, lower_st.st_gid) != (st.st_mode, st.st_uid, st.st_gid):
        return False
    return all("/" + rel + "/" + sub in RUNTIME_PATHS for sub, _path, _st in walk_tree(upper / rel))

"""Mount and unmount what a snapshotter hands out (containerd's ``mount.Mount``).

overlayfs with many layers runs into mount(2)'s 4096-byte option page: 80
absolute sha256 paths do not fit.  Two ways around it, tried in this order:

1. the new mount API: ``fsopen("overlay")`` then one ``fsconfig(SET_STRING,
   "lowerdir+", path)`` per layer (Linux 6.8+), ``fsmount`` and
   ``move_mount`` -- no length limit, no cwd tricks;
2. classic mount(2); if the option string is too long, paths are made
   relative to their common parent and mount(2) runs in a short-lived thread
   that did ``unshare(CLONE_FS)`` and ``chdir`` there (its cwd is private, so
   the daemon's other threads are not disturbed).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from engine.runtime import syscalls
from engine.snapshots.errors import MountError

log = logging.getLogger(__name__)

T = TypeVar("T")

# mount(2) copies at most one page of option data, including the trailing NUL.
MAX_MOUNT_DATA = 4095
_METHODS = ("auto", "fsopen", "legacy")


@dataclass(frozen=True)
class Mount:
    """One mount, as containerd describes it: ``mount -t <type> <source> -o <options>``."""

    type: str
    source: str
    options: tuple[str, ...] = field(default_factory=tuple)


def mount(mounts: Sequence[Mount], target: Path, method: str = "auto") -> None:
    """Mount ``mounts`` in order on ``target`` (normally exactly one)."""
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}")
    target = Path(os.path.abspath(target))
    for m in mounts:
        if m.type == "bind":
            _mount_bind(m, target)
        elif m.type == "overlay":
            _mount_overlay(m, target, method)
        else:
            raise MountError(f"unsupported mount type {m.type!r}")
        log.debug("mounted %s %s on %s", m.type, m.source, target)


def unmount(target: Path) -> None:
    """Unmount ``target``; if it is busy, detach it lazily (the kernel finishes when it is idle)."""
    try:
        syscalls.umount2(str(target), 0)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise MountError(f"cannot unmount {target}: {exc.strerror}") from exc
        log.warning("%s is busy: detaching it lazily", target)
        try:
            syscalls.umount2(str(target), syscalls.MNT_DETACH)
        except OSError as exc2:
            raise MountError(f"cannot detach {target}: {exc2.strerror}") from exc2


_OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")


def mount_points() -> list[str]:
    """The calling process' mount points, from /proc/self/mountinfo (``\\040``-style escapes decoded)."""
    points = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            raw = line.split(b" ")[4]
            points.append(os.fsdecode(_OCTAL_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), raw)))
    return points


def is_mounted(target: Path) -> bool:
    return os.path.abspath(target) in mount_points()


def unmount_all_under(root: Path) -> None:
    """Unmount everything at or below ``root``, deepest first (cleanup after a crash or a test)."""
    prefix = os.path.abspath(root)
    # Mounts can be stacked on one point: repeat until none is left (bounded, in case one is stuck).
    for _ in range(64):
        under = [p for p in mount_points() if p == prefix or p.startswith(prefix + "/")]
        if not under:
            return
        for point in sorted(set(under), key=len, reverse=True):
            unmount(Path(point))
    raise MountError(f"mounts under {root} keep coming back")


# -- bind -----------------------------------------------------------------


def _mount_bind(m: Mount, target: Path) -> None:
    flags = syscalls.MS_BIND | (syscalls.MS_REC if "rbind" in m.options else 0)
    try:
        syscalls.mount(m.source, str(target), None, flags)
        if "ro" in m.options:
            # A bind mount ignores MS_RDONLY at creation: it takes a remount.
            syscalls.mount(None, str(target), None, flags | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)
    except OSError as exc:
        raise MountError(f"bind mount {m.source} on {target}: {exc.strerror}") from exc


# -- overlay --------------------------------------------------------------


@dataclass
class _Overlay:
    lowers: list[str]
    upper: str | None
    work: str | None
    flags: list[str]  # options that are not paths, e.g. "index=off"
    readonly: bool


def _parse_overlay(m: Mount) -> _Overlay:
    ov = _Overlay(lowers=[], upper=None, work=None, flags=[], readonly=False)
    for opt in m.options:
        key, _, value = opt.partition("=")
        if key == "lowerdir":
            ov.lowers = value.split(":")
        elif key == "upperdir":
            ov.upper = value
        elif key == "workdir":
            ov.work = value
        elif opt == "ro":
            ov.readonly = True
        elif opt == "rw":
            pass
        else:
            ov.flags.append(opt)
    if not ov.lowers:
        raise MountError("overlay mount without lowerdir")
    return ov


def _mount_overlay(m: Mount, target: Path, method: str) -> None:
    ov = _parse_overlay(m)
    first_error = ""
    if method in ("auto", "fsopen"):
        try:
            _overlay_fsopen(ov, target)
            return
        except OSError as exc:
            # ENOSYS: no new mount API; EINVAL on "lowerdir+": a kernel before 6.8.
            if method == "fsopen" or exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise MountError(f"overlay on {target} (fsopen): {exc}") from exc
            log.info("new mount API unusable (%s): falling back to mount(2)", exc)
            first_error = f"; fsopen said: {exc}"
    try:
        _overlay_legacy(ov, target)
    except OSError as exc:
        raise MountError(f"overlay on {target} (mount(2)): {exc}{first_error}") from exc


def _overlay_fsopen(ov: _Overlay, target: Path) -> None:
    fs_fd = syscalls.fsopen("overlay")
    try:
        try:
            for lower in ov.lowers:
                syscalls.fsconfig(fs_fd, syscalls.FSCONFIG_SET_STRING, "lowerdir+", lower)
            if ov.upper is not None:
                syscalls.fsconfig(fs_fd, syscalls.FSCONFIG_SET_STRING, "upperdir", ov.upper)
            if ov.work is not None:
                syscalls.fsconfig(fs_fd, syscalls.FSCONFIG_SET_STRING, "workdir", ov.work)
            for flag in ov.flags:
                key, sep, value = flag.partition("=")
                if sep:
                    syscalls.fsconfig(fs_fd, syscalls.FSCONFIG_SET_STRING, key, value)
                else:
                    syscalls.fsconfig(fs_fd, syscalls.FSCONFIG_SET_FLAG, key)
            syscalls.fsconfig(fs_fd, syscalls.FSCONFIG_CMD_CREATE)
        except OSError as exc:
            detail = _fs_context_log(fs_fd)
            if detail:
                exc.strerror = f"{exc.strerror} [{detail}]"
            raise
        attrs = syscalls.MOUNT_ATTR_RDONLY if ov.readonly else 0
        mnt_fd = syscalls.fsmount(fs_fd, syscalls.FSMOUNT_CLOEXEC, attrs)
        try:
            syscalls.move_mount(mnt_fd, str(target))
        finally:
            os.close(mnt_fd)
    finally:
        os.close(fs_fd)


def _fs_context_log(fs_fd: int) -> str:
    """The kernel's own explanation of a failed fsconfig (read from the context fd)."""
    lines = []
    for _ in range(16):
        try:
            lines.append(os.read(fs_fd, 4096).decode(errors="replace").strip())
        except OSError:
            break
    return "; ".join(line for line in lines if line)


def _legacy_data(ov: _Overlay, base: str | None) -> str:
    def rel(p: str) -> str:
        return os.path.relpath(p, base) if base is not None else p

    for p in [*ov.lowers, ov.upper or "", ov.work or ""]:
        if any(c in p for c in ",:\\"):
            raise MountError(f"overlay path {p!r} contains a character mount(2) options cannot carry")
    opts = ["lowerdir=" + ":".join(rel(p) for p in ov.lowers)]
    if ov.upper is not None:
        opts.append("upperdir=" + rel(ov.upper))
    if ov.work is not None:
        opts.append("workdir=" + rel(ov.work))
    return ",".join(opts + ov.flags)


def _overlay_legacy(ov: _Overlay, target: Path) -> None:
    flags = syscalls.MS_RDONLY if ov.readonly else 0
    data = _legacy_data(ov, None)
    if len(data) <= MAX_MOUNT_DATA:
        syscalls.mount("overlay", str(target), "overlay", flags, data)
        return
    paths = [*ov.lowers, *(p for p in (ov.upper, ov.work) if p is not None)]
    base = os.path.commonpath(paths)
    data = _legacy_data(ov, base)
    if len(data) > MAX_MOUNT_DATA:
        raise MountError(f"overlay options are {len(data)} bytes even with relative paths (max {MAX_MOUNT_DATA})")
    log.info("overlay options too long for mount(2): mounting with paths relative to %s", base)

    def in_private_cwd() -> None:
        os.chdir(base)  # this thread's own cwd (CLONE_FS): chdir here moves nobody else
        syscalls.mount("overlay", str(target), "overlay", flags, data)

    in_unshared_thread(syscalls.CLONE_FS, in_private_cwd, "overlay-mount")


def in_unshared_thread(flags: int, fn: Callable[[], T], name: str) -> T:
    """``fn()`` in a new thread that first unshares ``flags`` (CLONE_FS, CLONE_NEWNS...), so what it
    changes (cwd, mounts) dies with the thread; its result or exception is handed back here."""
    result: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            syscalls.unshare(flags)
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=body, name=name)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]

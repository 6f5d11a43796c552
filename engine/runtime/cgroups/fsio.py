"""Read and write cgroup interface files.

Interface files take one value per write(2); the kernel parses each write as
a whole, so values are written with a single os.write on an O_WRONLY fd
(Documentation/admin-guide/cgroup-v2.rst, "Conventions").  Errors keep their
errno (``CgroupError.errno``) because callers react to some of them (EBUSY on
rmdir, ENOENT for a file the kernel lacks).
"""

from __future__ import annotations

import errno as errno_
import os
import time

from engine.runtime.cgroups.errors import CgroupError, ControllerUnavailable
from engine.runtime.lazylog import getLogger
from engine.runtime.smallfiles import read_text

log = getLogger(__name__)

_RMDIR_ATTEMPTS = 6


class CgroupFileError(CgroupError):
    def __init__(self, message: str, err: int) -> None:
        super().__init__(message)
        self.errno = err


def write(directory: str, name: str, value: str) -> None:
    path = os.path.join(directory, name)
    log.debug("write %r > %s", value, path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ControllerUnavailable(f"{path} does not exist: the controller or the kernel lacks {name}") from None
    except OSError as e:
        raise CgroupFileError(f"open {path}: {e.strerror}", e.errno or 0) from e
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupFileError(f"write {value!r} to {path}: {e.strerror}", e.errno or 0) from e
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    try:
        return read_text(path)
    except OSError as e:
        raise CgroupFileError(f"read {path}: {e.strerror}", e.errno or 0) from e


def read_optional(directory: str, name: str) -> str | None:
    """The file's text, or None when this kernel or hierarchy does not have it."""
    try:
        return read(directory, name)
    except CgroupFileError as e:
        if e.errno in (errno_.ENOENT, errno_.ENOTSUP, errno_.EOPNOTSUPP):
            return None
        raise


def parse_limit(text: str | None) -> int | None:
    """An integer value; None for "max", for v1's "unlimited" sentinel, or a missing file."""
    if text is None:
        return None
    value = text.strip()
    if value in ("", "max", "-1"):
        return None
    number = int(value)
    # v1 reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE, LONG_MAX rounded down to a page.
    return None if number >= 0x7FFFFFFFFFFFF000 else number


def parse_int(text: str | None) -> int | None:
    return None if text is None else int(text.split()[0])


def parse_flat_keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events, oom_control)."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def procs(directory: str) -> list[int]:
    return [int(p) for p in read(directory, "cgroup.procs").split()]


def procs_in(directories: list[str]) -> list[int]:
    """The processes of these cgroups, sorted; a cgroup removed meanwhile (ENOENT) has none."""
    found: set[int] = set()
    for directory in directories:
        try:
            found.update(procs(directory))
        except CgroupFileError as e:
            if e.errno != errno_.ENOENT:
                raise
    return sorted(found)


def walk_bottom_up(directory: str) -> list[str]:
    """``directory`` and every cgroup below it, deepest first (the order rmdir needs)."""
    found: list[str] = []
    for dirpath, _dirnames, _files in os.walk(directory, topdown=False):
        found.append(dirpath)
    return found


def rmdir(directory: str) -> None:
    """rmdir a cgroup, retrying EBUSY briefly: a task that just died leaves its cgroup a moment later."""
    for attempt in range(_RMDIR_ATTEMPTS):
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno_.EBUSY or attempt == _RMDIR_ATTEMPTS - 1:
                raise CgroupFileError(f"rmdir {directory}: {e.strerror}", e.errno or 0) from e
            log.debug("rmdir %s: busy, retrying", directory)
            time.sleep(0.005 * 2**attempt)

"""What /proc says about a process: alive, zombie, start time.

A pid alone is ambiguous once the process died and the number was reused,
so state records the init's start time (field 22 of /proc/<pid>/stat) like
runc does (libcontainer/system.Stat_t StartTime) and compares both.
"""

from __future__ import annotations

import os

from .abcs import Iterator
from .smallfiles import read_text


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = read_text(f"/proc/{pid}/stat", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest  # rest[0] is field 3 (state)


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def process_state(pid: int) -> str | None:
    """One-letter state (R, S, D, Z, T, ...) or None if the pid is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else fields[0]


def is_running(pid: int, expected_start: int | None) -> bool:
    """True if ``pid`` is the same process as recorded and has not exited (zombies count as exited)."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return expected_start is None or int(fields[19]) == expected_start


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def reap_if_child(pid: int) -> int | None:
    """Collect ``pid``'s exit status if it is our child and has exited; None otherwise."""
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if waited == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def reap_exited() -> Iterator[tuple[int, int]]:
    """Every child that has exited, without blocking: (pid, exit code the way shells report it,
    128+n for a process killed by signal n)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        yield pid, code if code >= 0 else 128 - code

"""Errors raised by the cgroup managers.

They derive from the runtime's own hierarchy (``engine.runtime.errors``) so the
CLI and the daemon map them like every other runtime failure.
"""

from __future__ import annotations

from engine.runtime.errors import InvalidSpec, RuntimeFailure, Unsupported


class CgroupError(RuntimeFailure):
    """Base of every cgroup failure: a file could not be read or written."""


class CgroupNotFound(CgroupError):
    """The cgroup directory does not exist (not created yet, or already destroyed)."""


class CgroupBusy(CgroupError):
    """The cgroup still holds processes, so it cannot be removed."""

    def __init__(self, path: str, pids: list[int]) -> None:
        super().__init__(f"cgroup {path} still has processes: {sorted(pids)}")
        self.path = path
        self.pids = pids


class ControllerUnavailable(CgroupError, Unsupported):
    """linux.resources asks for a controller (or a file) this host does not have."""


class InvalidResources(CgroupError, InvalidSpec):
    """linux.resources holds a value that cannot be expressed (e.g. swap below the memory limit)."""


class DetectionFailed(CgroupError, Unsupported):
    """No usable cgroup hierarchy was found in /proc/self/mountinfo."""

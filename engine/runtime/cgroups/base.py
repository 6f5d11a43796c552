"""The one interface the runtime codes against, whatever the host's cgroup mode."""

from __future__ import annotations

import abc
import os
import time

from engine.runtime import signals
from engine.runtime.abcs import Callable, Mapping
from engine.runtime.cgroups import fsio
from engine.runtime.cgroups.errors import CgroupError, ControllerUnavailable
from engine.runtime.lazylog import getLogger

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:  # stats.py is imported by stats() itself: `run` never needs it
    from engine.runtime.cgroups.stats import CgroupStats

log = getLogger(__name__)

#: How long freeze() waits for the kernel to report the cgroup frozen.
FREEZE_TIMEOUT_S = 10.0


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` with a growing back-off (1 ms to 50 ms) until true or timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() >= deadline:
            raise CgroupError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class Cgroup(abc.ABC):
    """A container's cgroup, in every hierarchy the host uses.

    The object is cheap and holds no open files: a later runtime verb reopens
    the same cgroup with ``open_cgroup(cg.path, container_id)``.
    """

    @property
    @abc.abstractmethod
    def path(self) -> str:
        """Store-able cgroupsPath that reopens exactly these directories (see cgpath.py)."""

    @abc.abstractmethod
    def directories(self) -> dict[str, str]:
        """Hierarchy key (v1 controller, "" for unified) → directory of this cgroup."""

    @abc.abstractmethod
    def create(self) -> None:
        """Make the cgroup (idempotent) and prepare it so processes can join."""

    @abc.abstractmethod
    def add_process(self, pid: int) -> None:
        """Move ``pid`` (all its threads) into the cgroup in every hierarchy."""

    def join_plan(self) -> tuple[str | None, list[str]]:
        """How a new child can enter this cgroup without being migrated by its parent.

        (a cgroup v2 directory to create it in with clone3 CLONE_INTO_CGROUP, or None;
        the v1 directories it then joins itself with ``join_v1_as_current_thread``).
        Migrating a process (a pid written to cgroup.procs) takes the cgroup
        threadgroup lock for writing, which waits for an RCU grace period
        (1-15 ms on this host) unless another move just happened; neither of
        these takes it.  The default: no v2 directory, nothing to join.
        """
        return None, []

    @abc.abstractmethod
    def set_resources(self, resources: Mapping[str, Any]) -> None:
        """Apply OCI ``linux.resources``."""

    @abc.abstractmethod
    def freeze(self) -> None:
        """Freeze every process and return once the kernel reports them frozen."""

    @abc.abstractmethod
    def thaw(self) -> None: ...

    @abc.abstractmethod
    def is_frozen(self) -> bool: ...

    @abc.abstractmethod
    def pids(self) -> list[int]:
        """Every process in the cgroup and its descendants, sorted."""

    @abc.abstractmethod
    def stats(self) -> CgroupStats: ...

    @abc.abstractmethod
    def oom_kills(self) -> int:
        """How many processes the OOM killer killed in this cgroup."""

    @abc.abstractmethod
    def destroy(self) -> None:
        """Remove the cgroup and its descendants, deepest first; CgroupBusy if processes remain."""

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.directories().values())

    def kill_all(self, sig: int) -> None:
        """Send ``sig`` to every process.

        Frozen first so nothing forks while the list is walked (runc's
        signalAllProcesses does the same), thawed afterwards so the signal is
        acted on.  A cgroup that was frozen before stays frozen, except for
        SIGKILL: v1-frozen tasks cannot die until thawed, and a kill must kill.
        """
        was_frozen = self.is_frozen()
        froze = False
        if not was_frozen:
            try:
                self.freeze()
                froze = True
            except ControllerUnavailable as e:
                log.warning("signalling %s without freezing it first: %s", self.path, e)
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    continue
        finally:
            if froze or (was_frozen and sig == signals.SIGKILL):
                self.thaw()


def join_v1_as_current_thread(directories: list[str]) -> None:
    """Move the calling (single-threaded) process into each cgroup v1 directory: "0" to its ``tasks``.

    A thread moving itself takes no threadgroup lock (kernel/cgroup: cgroup_procs_write_start), so no
    RCU grace period; for a single-threaded process it moves the whole process, as cgroup.procs would.
    """
    for directory in directories:
        fsio.write(directory, "tasks", "0")

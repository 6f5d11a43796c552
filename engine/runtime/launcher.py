"""The parent side of starting a process in a container: fork, cgroup, id maps, pid.

Shared by `create` (a new container) and `exec` (a process in an existing
one).  Must run in a single-threaded process: fork and unshare(CLONE_NEWUSER)
are unsafe or refused otherwise (MACHINE-NOTES; see forkserver.py for the
daemon's path).
"""

from __future__ import annotations

import _thread
import os
from collections.abc import Mapping, Sequence

from . import init, signals, sync
from . import syscalls as sc
from .cgroup_link import CgroupHandle
from .errors import RuntimeFailure, SetupFailed
from .init import InitContext
from .lazylog import getLogger
from .namespaces import write_id_maps

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)


def other_threads() -> int:
    """Threads of this process besides the calling one, as the kernel counts them.

    procfs gives /proc/self/task two links plus one per thread: one stat, no
    threading import.  `_thread._count()` would be wrong in a child forked from
    a threaded process (it keeps the parent's count), which is where runtimes
    embedded in tests and tools call from.
    """
    try:
        return os.stat("/proc/self/task").st_nlink - 3
    except OSError:  # no procfs: Python's own count of the threads it started
        return int(_thread._count())


def check_single_threaded() -> None:
    if other_threads() > 0:
        raise RuntimeFailure(
            "container setup needs a single-threaded process (fork/unshare); "
            "call it from the fork server or a subprocess"
        )


def launch(
    ctx: InitContext,
    cgroup: CgroupHandle | None,
    uid_maps: Sequence[Mapping[str, Any]] = (),
    gid_maps: Sequence[Mapping[str, Any]] = (),
) -> tuple[int, sync.Socket]:
    """Fork the bootstrap, feed it, and return (init pid, sync socket to the init)."""
    check_single_threaded()
    init.preload_for_child(ctx)
    parent_sock, child_sock = sync.channel()
    ctx.sync_sock = child_sock
    bootstrap_pid, migrate = _fork_into(cgroup, ctx)
    if bootstrap_pid == 0:
        parent_sock.close()
        init.bootstrap(ctx)
    child_sock.close()
    for _, fd in ctx.join_fds:
        os.close(fd)
    init_pid = 0
    try:
        if migrate and cgroup is not None:
            # Before the child unshares CLONE_NEWCGROUP, so its namespace root is the container cgroup.
            cgroup.add_process(bootstrap_pid)
        sync.send(parent_sock, "continue")
        msg = sync.receive(parent_sock)
        if msg.get("type") == "userns":
            write_id_maps(bootstrap_pid, uid_maps, gid_maps)
            sync.send(parent_sock, "continue")
            msg = sync.receive(parent_sock)
        if msg.get("type") == "error":
            raise SetupFailed(str(msg.get("message")))
        if msg.get("type") != "pid":
            raise SetupFailed(f"unexpected message from bootstrap: {msg!r}")
        init_pid = int(msg["pid"])
        sync.send(parent_sock, "continue")  # the init may speak now
    except BaseException:
        parent_sock.close()
        raise
    finally:
        _reap(bootstrap_pid)
    return init_pid, parent_sock


def _fork_into(cgroup: CgroupHandle | None, ctx: InitContext) -> tuple[int, bool]:
    """Fork the bootstrap; (its pid, or 0 in the child; whether the parent must still migrate it).

    Where the kernel allows, the child is never migrated (cgroups/base.py join_plan: a migration
    waits an RCU grace period): it is cloned into the v2 directory, then enters the v1 ones itself
    before it unshares anything.  Otherwise a plain fork, and the parent moves it as before.
    """
    if cgroup is None:
        return os.fork(), False
    into, v1_dirs = cgroup.join_plan()
    if into is None:
        ctx.cgroup_v1_self_join = v1_dirs
        return os.fork(), not v1_dirs
    try:
        fd = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        log.debug("cannot open %s (%s): forking and migrating instead", into, exc)
    else:
        ctx.cgroup_v1_self_join = v1_dirs
        try:
            return sc.fork_into_cgroup(fd), False
        except OSError as exc:
            log.debug("%s: forking and migrating instead", exc)
        finally:
            os.close(fd)
    ctx.cgroup_v1_self_join = []
    return os.fork(), True


def _reap(pid: int) -> None:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        log.debug("bootstrap %d exited %d", pid, code)


def kill_quietly(pid: int) -> None:
    """Kill a half-made init (and so its PID namespace) after a failed setup."""
    if pid <= 0:
        return
    try:
        os.kill(pid, signals.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass

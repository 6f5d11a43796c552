"""The parent side of starting a process in a container: fork, cgroup, id maps, pid.

Shared by `create` (a new container) and `exec` (a process in an existing
one).  Must run in a single-threaded process: fork and unshare(CLONE_NEWUSER)
are unsafe or refused otherwise (MACHINE-NOTES; see forkserver.py for the
daemon's path).
"""

from __future__ import annotations

import _thread
import os

from . import init, signals, sync
from . import syscalls as sc
from .abcs import Mapping, Sequence
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
    clone_flags = sc.CLONE_NEWPID if can_clone_init(ctx) else 0
    child_pid, migrate = _fork_into(cgroup, ctx, clone_flags)
    if child_pid == 0:
        parent_sock.close()
        init.bootstrap(ctx)
    child_sock.close()
    for _, fd in ctx.join_fds:
        os.close(fd)
    try:
        if migrate and cgroup is not None:
            # Before the child unshares CLONE_NEWCGROUP, so its namespace root is the container cgroup.
            cgroup.add_process(child_pid)
        sync.send(parent_sock, "continue")
        msg = sync.receive(parent_sock)
        if msg.get("type") == "userns":
            write_id_maps(child_pid, uid_maps, gid_maps)
            sync.send(parent_sock, "continue")
            msg = sync.receive(parent_sock)
        if msg.get("type") == "error":
            raise SetupFailed(str(msg.get("message")))
        if msg.get("type") != "pid":
            raise SetupFailed(f"unexpected message from bootstrap: {msg!r}")
        # A bootstrap cloned as the init knows itself only as PID 1: clone gave us its pid.
        init_pid = child_pid if ctx.cloned_as_init else int(msg["pid"])
        sync.send(parent_sock, "continue")  # the init may speak now
    except BaseException:
        parent_sock.close()
        if ctx.cloned_as_init:
            kill_quietly(child_pid)
        raise
    finally:
        if not ctx.cloned_as_init:
            _reap(child_pid)
    return init_pid, parent_sock


def can_clone_init(ctx: InitContext) -> bool:
    """Whether the bootstrap can be cloned straight into the container's new PID namespace.

    unshare(CLONE_NEWPID) moves only the caller's *children*, so the bootstrap forks again to
    make the init; clone3(CLONE_NEWPID) makes the init at once and saves that fork, its exit
    and its reaping (~1.5 ms of a 13 ms create here).  Not when a user namespace comes first
    (it must own the PID namespace, and the parent writes its id maps before anything else),
    nor when the PID or time namespace is joined (setns applies to children too) or a time
    namespace is new (its offsets must be written before any process is in it).
    """
    plan = ctx.plan
    joined = {ns_type for ns_type, _ in ctx.join_fds}
    return (
        plan.creates_pid_namespace()
        and not plan.new_user
        and not plan.has_new("time")
        and not joined & {"user", "pid", "time"}
    )


def _fork_into(cgroup: CgroupHandle | None, ctx: InitContext, clone_flags: int) -> tuple[int, bool]:
    """Fork the bootstrap; (its pid, or 0 in the child; whether the parent must still migrate it).

    Where the kernel allows, the child is never migrated (cgroups/base.py join_plan: a migration
    waits an RCU grace period): it is cloned into the v2 directory, then enters the v1 ones itself
    before it unshares anything.  Otherwise a plain fork, and the parent moves it as before.
    ``clone_flags`` (CLONE_NEWPID, see can_clone_init) are used if the clone succeeds;
    ctx.cloned_as_init tells both sides whether it did.
    """
    ctx.cloned_as_init = False
    into_fd: int | None = None
    if cgroup is None:
        self_join: list[str] = []
        migrate = False
    else:
        into, v1_dirs = cgroup.join_plan()
        self_join, migrate = v1_dirs, into is None and not v1_dirs
        if into is not None:
            try:
                into_fd = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                log.debug("cannot open %s (%s): forking and migrating instead", into, exc)
                self_join, migrate = [], True
    ctx.cgroup_v1_self_join = self_join
    if into_fd is not None or clone_flags:
        ctx.cloned_as_init = bool(clone_flags)
        try:
            return sc.clone_process(clone_flags, into_fd), False
        except OSError as exc:
            log.debug("%s: forking%s instead", exc, " and migrating" if into_fd is not None else "")
            ctx.cloned_as_init = False
            if into_fd is not None:
                ctx.cgroup_v1_self_join, migrate = [], True
        finally:
            if into_fd is not None:
                os.close(into_fd)
    return os.fork(), migrate


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

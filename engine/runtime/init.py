"""The child side: from fork to execve of the container's process.

Two short, linear stages, like runc's nsexec stages + `runc init`:

``bootstrap`` (forked by the runtime, still in the host's PID namespace)
    join namespaces by path, unshare the user namespace (the parent writes its
    id maps), unshare the rest, fork the container init, report its pid, exit.
    A second fork is needed because unshare(CLONE_NEWPID) only moves the
    *children* into the new PID namespace -- unless the runtime could clone the
    bootstrap straight into a new PID namespace (launcher.can_clone_init): it
    then unshares the rest and goes on as the init itself.

``container_init`` (PID 1 of the container)
    build the rootfs, let the parent run createRuntime hooks, run
    createContainer hooks, pivot_root, finish the rootfs, hostname, console,
    report "ready", then block opening exec.fifo until `start`; after that
    run startContainer hooks, drop privileges and execve.

Both run in a forked copy of a single-threaded Python: they never return
(os._exit), and every failure before "ready" goes back to the parent over
the sync socket.  This code runs only in the child: keep it free of threads.
"""

from __future__ import annotations

# Codecs are imported lazily by open(): preload them, the host tree is gone after pivot_root.
import encodings.ascii
import encodings.utf_8  # noqa: F401
import gc
import os
import sys

# Everything the child needs is imported here, in the parent: after
# pivot_root the host's site-packages are gone and a lazy import would fail.
from . import hooks, process, rootfs, signals, sync
from . import syscalls as sc
from .abcs import Mapping
from .capabilities import apply_capabilities, last_supported_capability
from .lazylog import DEBUG, getLogger
from .namespaces import NamespacePlan, join_namespaces
from .record import record, record_field

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    import socket
    from typing import Any, NoReturn

log = getLogger(__name__)

PR_SET_NO_NEW_PRIVS = 38  # <linux/prctl.h>


@record
class InitContext:
    """Everything the child needs, prepared by the parent before fork."""

    spec: Mapping[str, Any]
    bundle: str
    rootfs: str
    plan: NamespacePlan
    sync_sock: sync.Socket
    join_fds: list[tuple[str, int]] = record_field(default_factory=list)
    fifo_path: str | None = None  # None for `exec`: no create/start split
    console_sock: socket.socket | None = None
    seccomp_program: bytes | None = None
    preserve_fds: int = 0
    stdio: tuple[int, int, int] | None = None  # fds to become 0/1/2 (fork server); None = inherit ours
    no_pivot: bool = False  # runc --no-pivot: MS_MOVE + chroot instead of pivot_root
    setup_rootfs: bool = True  # False for exec: the container's rootfs is already there
    state_for_hooks: dict[str, Any] = record_field(default_factory=dict)
    cgroup_v1_self_join: list[str] = record_field(default_factory=list)  # v1 dirs the bootstrap enters itself
    cloned_as_init: bool = False  # the bootstrap was cloned into the new PID namespace: it becomes the init


def bootstrap(ctx: InitContext) -> NoReturn:
    """Stage 1 (see module docstring).  Exits 0 after reporting the init's pid."""
    gc.disable()  # this child and the init it forks live until _exit/execve: a collection would only copy pages
    sock = ctx.sync_sock
    try:
        if ctx.stdio is not None:
            for target, fd in enumerate(ctx.stdio):
                os.dup2(fd, target)  # dup2 clears O_CLOEXEC on the copy
        sync.expect(sock, "continue")  # the parent has put us in the container's cgroup (or cloned us into it)
        if ctx.cgroup_v1_self_join:  # the v1 hierarchies, then: before CLONE_NEWCGROUP takes our place as its root
            from .cgroups.base import join_v1_as_current_thread

            join_v1_as_current_thread(ctx.cgroup_v1_self_join)
        join_namespaces(ctx.join_fds)
        if ctx.plan.new_user:
            sc.unshare(sc.CLONE_NEWUSER)
            sync.send(sock, "userns")
            sync.expect(sock, "continue")  # uid_map/gid_map written by the parent
            # Become the namespace's root: host uid 0 may be unmapped inside.
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        flags = ctx.plan.new_flags & ~sc.CLONE_NEWPID if ctx.cloned_as_init else ctx.plan.new_flags
        if flags:
            sc.unshare(flags)
        if ctx.cloned_as_init:  # already PID 1 of the new namespace: no second fork (launcher.can_clone_init)
            sync.send(sock, "pid", pid=0)  # the parent has our pid from clone
            container_init(ctx)
        pid = os.fork()
        if pid == 0:
            container_init(ctx)
        sync.send(sock, "pid", pid=pid)
        os._exit(0)
    except BaseException as exc:
        _report_and_exit(sock, exc)


def container_init(ctx: InitContext) -> NoReturn:
    """Stage 2: the container's PID 1 (or the exec'd process)."""
    sock = ctx.sync_sock
    spec = ctx.spec
    proc: Mapping[str, Any] = spec["process"]
    linux: Mapping[str, Any] = spec.get("linux", {}) or {}
    try:
        # Python ignores SIGPIPE/SIGXFSZ; ignored signals survive execve, so restore them.
        for signum in (signals.SIGPIPE, signals.SIGXFSZ, signals.SIGINT, signals.SIGTERM):
            signals.signal(signum, signals.SIG_DFL)
        os.setsid()  # leave the caller's session: its terminal's signals are not ours
        # Wait until the parent has our pid from the bootstrap: we share its socket and
        # must not speak first.
        sync.expect(sock, "continue")
        fifo_fd = None
        if ctx.setup_rootfs:
            rootfs.prepare_rootfs(ctx.rootfs, spec, ctx.bundle, in_user_ns=_in_user_ns(ctx.plan))
            if hooks.needs_setup_sync(spec):  # no hooks, no round trip (each costs two context switches)
                sync.send(sock, "hooks")
                resumed = sync.expect(sock, "continue")  # prestart + createRuntime ran in the runtime namespace
                ctx.state_for_hooks = resumed.get("state") or ctx.state_for_hooks  # now with our pid
                # createContainer: path resolved in the runtime namespace, run in the container's (before pivot_root).
                hooks.run_hooks(hooks.hooks_of(spec, "createContainer"), "createContainer", ctx.state_for_hooks)
            if ctx.fifo_path is not None:
                # O_PATH now; reopened through /proc/self/fd after pivot_root when the host path is gone.
                fifo_fd = os.open(ctx.fifo_path, os.O_PATH | os.O_CLOEXEC)
            if ctx.no_pivot:
                rootfs.move_root_to(ctx.rootfs)
            else:
                rootfs.pivot_to(ctx.rootfs)
            rootfs.apply_root_propagation(linux.get("rootfsPropagation"))
            # readonly before masked, as runc does (a masked path inside a read-only one still works).
            rootfs.readonly_paths(linux.get("readonlyPaths", []) or [])
            rootfs.mask_paths(linux.get("maskedPaths", []) or [])
            process.apply_sysctl(linux.get("sysctl", {}) or {})
            if spec.get("hostname") and ctx.plan.has_new("uts"):
                sc.sethostname(str(spec["hostname"]))
            if spec.get("domainname") and ctx.plan.has_new("uts"):
                sc.setdomainname(str(spec["domainname"]))
        if proc.get("terminal"):
            # Imported by preload_for_child in the parent: the host's tree is gone here.
            from .console import become_controlling_terminal, bind_console, open_pty, send_master, set_size

            master, slave_path = open_pty()
            set_size(master, proc.get("consoleSize"))
            if ctx.setup_rootfs:
                bind_console(slave_path)
            if ctx.console_sock is None:
                raise OSError("process.terminal is true but there is no console socket")
            send_master(ctx.console_sock, master, slave_path)
            os.close(master)
            ctx.console_sock.close()
            become_controlling_terminal(slave_path)
        if ctx.setup_rootfs and (spec.get("root", {}) or {}).get("readonly"):
            rootfs.make_root_readonly()
        if "oomScoreAdj" in proc:
            process.set_oom_score_adj("self", int(proc["oomScoreAdj"]))
        process.apply_rlimits(proc.get("rlimits", []) or [])
        cwd = str(proc.get("cwd", "/"))
        os.chdir(cwd)
        env = process.environment(proc.get("env", []) or [])
        args = [str(a) for a in proc["args"]]
        executable = process.find_executable(args[0], env, cwd)
        sync.send(sock, "ready")
        sock.close()
    except BaseException as exc:
        _report_and_exit(sock, exc)

    # From here the parent has gone (create returned): errors go to our stderr, like runc's.
    try:
        if fifo_fd is not None:
            fifo = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)  # blocks until `start`
            os.write(fifo, b"0")
            os.close(fifo)
            os.close(fifo_fd)
            hooks.run_hooks(hooks.hooks_of(spec, "startContainer"), "startContainer", ctx.state_for_hooks)
        drop_privileges_and_exec(proc, linux, ctx, executable, args, env)
    except BaseException as exc:
        print(f"berth-runtime init: {exc}", file=sys.stderr, flush=True)
        os._exit(127)


def drop_privileges_and_exec(
    proc: Mapping[str, Any],
    linux: Mapping[str, Any],
    ctx: InitContext,
    executable: str,
    args: list[str],
    env: dict[str, str],
) -> NoReturn:
    """User, capabilities, no_new_privs and seccomp in runc's order (standard_init_linux.go)."""
    user = proc.get("user", {}) or {}
    no_new_privs = bool(proc.get("noNewPrivileges"))
    seccomp_flags = (linux.get("seccomp") or {}).get("flags", []) or []
    if ctx.seccomp_program is not None and not no_new_privs:
        _load_seccomp(ctx.seccomp_program, seccomp_flags)  # needs CAP_SYS_ADMIN: before dropping it

    def change_user() -> None:
        process.change_user(user, in_user_ns_without_setgroups=_setgroups_denied())

    if proc.get("capabilities") is not None:
        apply_capabilities(proc["capabilities"], change_user=change_user)
    else:
        change_user()  # runc leaves capabilities alone when the spec has none
    process.apply_umask(user)
    if no_new_privs:
        sc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    if ctx.seccomp_program is not None and no_new_privs:
        _load_seccomp(ctx.seccomp_program, seccomp_flags)  # as late as possible: fewer syscalls to allow
    os.closerange(3 + ctx.preserve_fds, _max_fd())
    os.execve(executable, args, env)


def preload_for_child(ctx: InitContext) -> None:
    """Import, in the parent, what the child will need after pivot_root (imports need the host tree).

    And read what it would read for itself: the kernel's last capability, kept by a long-lived
    caller (the fork server) for every container instead of read by each.
    """
    last_supported_capability()
    if ctx.seccomp_program is not None:
        from . import seccomp_bpf  # noqa: F401  (only when a filter is used; no pyseccomp: it is compiled)
    if any(hooks.hooks_of(ctx.spec, kind) for kind in hooks.HOOK_KINDS):
        import subprocess  # noqa: F401  (hooks.run_hooks imports it lazily; the child cannot)
    if (ctx.spec.get("process") or {}).get("terminal"):
        import socket  # noqa: F401  (console.send_master imports them lazily; the child cannot)
        import termios  # noqa: F401

        from . import console  # noqa: F401  (container_init imports it only with a terminal)


def _load_seccomp(program: bytes, flags: list[str]) -> None:
    from .seccomp_bpf import load_seccomp  # already in sys.modules: preload_for_child

    load_seccomp(program, flags)


def _max_fd() -> int:
    try:
        return max(int(n) for n in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return 1024


def _in_user_ns(plan: NamespacePlan) -> bool:
    return plan.new_user or any(t == "user" for t, _ in plan.join)


def _setgroups_denied() -> bool:
    try:
        with open("/proc/self/setgroups", encoding="ascii") as f:
            return f.read().strip() == "deny"
    except OSError:
        return False


def _report_and_exit(sock: sync.Socket, exc: BaseException) -> NoReturn:
    message = str(exc) or type(exc).__name__
    try:
        sync.send(sock, "error", message=message)
    except OSError:
        print(f"berth-runtime init: {message}", file=sys.stderr, flush=True)
    if log.isEnabledFor(DEBUG):
        import traceback  # loaded with logging, which a debug logger has imported: no file is read here

        traceback.print_exc()
    os._exit(1)

"""`create`: make a container from a bundle and leave its init blocked on exec.fifo.

runtime.md#create: the environment is set up (namespaces, rootfs, cgroup,
hooks up to createContainer) but the user's process does not run until
`start`.  The init is a grandchild: a caller that wants to reap it makes
itself a child subreaper (PR_SET_CHILD_SUBREAPER) beforehand, as `run`,
`exec` and the fork server do.
"""

from __future__ import annotations

import os
import time

from . import hooks, sync
from .cgroup_link import CgroupHandle, cgroup_path_of, open_container_cgroup
from .devices import resources_with_default_devices
from .errors import InvalidSpec
from .init import InitContext
from .launcher import kill_quietly, launch
from .lazylog import getLogger
from .namespaces import PROC_NAMES, open_join_fds, plan_namespaces
from .procinfo import start_time
from .record import record
from .spec import Spec, check_container_id, load_spec, rootfs_path
from .state import ContainerRecord, StateStore
from .status import hook_state

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    import socket

log = getLogger(__name__)


@record
class CreateOptions:
    console_socket: str | None = None
    pid_file: str | None = None
    preserve_fds: int = 0
    stdio: tuple[int, int, int] | None = None  # the container's stdin/stdout/stderr (default: ours)
    no_pivot: bool = False
    seccomp_program: bytes | None = None  # precompiled by the caller (the daemon caches them)
    spec: Spec | None = None  # the bundle's config.json as load_spec returned it, when the caller already read it


def create_container(
    store: StateStore, container_id: str, bundle: str, options: CreateOptions | None = None
) -> ContainerRecord:
    options = options or CreateOptions()
    check_container_id(container_id)
    bundle = os.path.abspath(bundle)
    spec = options.spec if options.spec is not None else load_spec(bundle)
    root = rootfs_path(bundle, spec)
    linux = spec.get("linux", {}) or {}
    plan = plan_namespaces(linux.get("namespaces", []) or [])
    if not plan.has_new("mount"):
        raise InvalidSpec("a new mount namespace is required (linux.namespaces needs type mount)")
    _warn_unsupported(spec)
    seccomp_program = options.seccomp_program
    if seccomp_program is None and linux.get("seccomp"):
        from .seccomp_bpf import program_for

        # In the parent: ~25 ms to compile (and ~20 ms to import pyseccomp), so cached on disk under
        # the runtime root; a cached program is found and loaded without pyseccomp.
        seccomp_program = program_for(linux["seccomp"], cache_dir=store.seccomp_cache_dir())

    store.reserve(container_id)
    record = ContainerRecord(
        id=container_id,
        bundle=bundle,
        rootfs=root,
        created=_utc_now(),
        annotations=dict(spec.get("annotations", {}) or {}),
        oci_version=str(spec.get("ociVersion")),
    )
    cgroup: CgroupHandle | None = None
    init_pid = 0
    console: socket.socket | None = None
    try:
        fifo = store.fifo_path(container_id)
        os.mkfifo(fifo, 0o622)
        # Exactly 0622 whatever the umask, owned by the container's root (runc's createExecFifo):
        # the init, maybe an unprivileged uid behind a user namespace, reopens it for writing.
        os.chmod(fifo, 0o622)
        os.chown(fifo, _host_id(linux.get("uidMappings"), 0), _host_id(linux.get("gidMappings"), 0))
        cgroup = _make_cgroup(spec, container_id)
        record.cgroup_path = cgroup_path_of(cgroup)
        console = _connect_console(spec, options.console_socket)
        ctx = InitContext(
            spec=spec,
            bundle=bundle,
            rootfs=root,
            plan=plan,
            sync_sock=sync.Socket(),  # replaced by launch()
            join_fds=open_join_fds(plan),
            fifo_path=fifo,
            console_sock=console,
            seccomp_program=seccomp_program,
            preserve_fds=options.preserve_fds,
            stdio=options.stdio,
            no_pivot=options.no_pivot,
        )
        ctx.sync_sock.close()
        ctx.state_for_hooks = hook_state(record, "creating")
        init_pid, sock = launch(ctx, cgroup, linux.get("uidMappings", []) or [], linux.get("gidMappings", []) or [])
        try:
            record.pid = init_pid
            record.pid_start_time = start_time(init_pid)
            record.namespace_paths = _namespace_paths(init_pid, spec)
            # Written while the init builds its rootfs (the two overlap), config before state:
            # whoever finds state.json finds the config too.
            store.save_config(container_id, spec)
            store.save(record)
            if hooks.needs_setup_sync(spec):  # the init asks only then (init.py)
                sync.expect(sock, "hooks")
                state = hook_state(record, "creating")
                # runtime.md#lifecycle step 5-6: prestart (deprecated) then createRuntime, in the runtime namespace.
                hooks.run_hooks(hooks.hooks_of(spec, "prestart"), "prestart", state)
                hooks.run_hooks(hooks.hooks_of(spec, "createRuntime"), "createRuntime", state)
                sync.send(sock, "continue", state=hook_state(record, "created"))
            sync.expect(sock, "ready")
        finally:
            sock.close()
        if options.pid_file:
            _write_pid_file(options.pid_file, init_pid)
    except BaseException:
        kill_quietly(init_pid)
        if cgroup is not None:
            _destroy_quietly(cgroup)
        store.remove(container_id)
        raise
    finally:
        if console is not None:
            console.close()
    log.info("created container %s (init pid %d)", container_id, init_pid)
    return record


def _utc_now() -> str:
    """datetime.now(UTC).isoformat() with a Z, without importing datetime (~1 ms of every `run`)."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    micros = nanos // 1000
    return f"{stamp}.{micros:06d}Z" if micros else f"{stamp}Z"


def _warn_unsupported(spec: Spec) -> None:
    """Fields Berth does not implement yet: say so instead of silently running without them."""
    process = spec.get("process") or {}
    linux = spec.get("linux") or {}
    for present, what in (
        (process.get("apparmorProfile"), "process.apparmorProfile"),
        (process.get("selinuxLabel"), "process.selinuxLabel"),
        (linux.get("mountLabel"), "linux.mountLabel"),
        (linux.get("personality"), "linux.personality"),
        (linux.get("timeOffsets"), "linux.timeOffsets"),
        (linux.get("intelRdt"), "linux.intelRdt"),
        (process.get("ioPriority"), "process.ioPriority"),
        (process.get("scheduler"), "process.scheduler"),
    ):
        if present:
            log.warning("%s is not supported by berth-runtime yet: ignored", what)


def _make_cgroup(spec: Spec, container_id: str) -> CgroupHandle | None:
    linux = spec.get("linux", {}) or {}
    cgroup = open_container_cgroup(linux.get("cgroupsPath"), container_id)
    if cgroup is None:
        if linux.get("resources") and _has_limits(linux["resources"]):
            from .errors import Unsupported

            raise Unsupported("linux.resources asks for limits but no cgroup manager is available")
        return None
    cgroup.create()
    resources = resources_with_default_devices(linux.get("resources", {}) or {}, linux.get("devices", []) or [])
    cgroup.set_resources(resources)
    return cgroup


def _has_limits(resources: dict[str, object]) -> bool:
    return any(k != "devices" for k, v in resources.items() if v)


def _destroy_quietly(cgroup: CgroupHandle) -> None:
    from .lifecycle import destroy_cgroup

    destroy_cgroup(cgroup.path, cgroup)


def _connect_console(spec: Spec, console_socket: str | None) -> socket.socket | None:
    terminal = bool((spec.get("process") or {}).get("terminal"))
    if terminal and not console_socket:
        raise InvalidSpec("cannot allocate tty if runc will detach without setting console socket")
    if not terminal:
        if console_socket:
            raise InvalidSpec("cannot use console socket if runc will not detach or allocate tty")
        return None
    import socket  # terminals only: not on every berth-runtime call (sync.py)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(console_socket))
    sock.set_inheritable(True)
    return sock


def _namespace_paths(pid: int, spec: Spec) -> dict[str, str]:
    """Where each container namespace lives (for exec and the daemon's network setup)."""
    result = {}
    for ns in (spec.get("linux", {}) or {}).get("namespaces", []) or []:
        ns_type = str(ns["type"])
        result[ns_type] = str(ns.get("path") or f"/proc/{pid}/ns/{PROC_NAMES[ns_type]}")
    return result


def _host_id(mappings: list[dict[str, int]] | None, container_id: int) -> int:
    """The host id that ``container_id`` maps to (itself without a user namespace)."""
    for m in mappings or []:
        if m["containerID"] <= container_id < m["containerID"] + m["size"]:
            return int(m["hostID"]) + container_id - int(m["containerID"])
    return container_id if not mappings else -1


def _write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(str(pid))
    os.rename(tmp, path)

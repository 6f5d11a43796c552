"""`exec`: start another process inside a running container (runc exec).

The new process joins every namespace of the container's init (setns by
/proc/<init>/ns/*), its cgroup, and gets the same seccomp filter,
capabilities and no_new_privs rules as the container's process unless the
process.json given says otherwise.
"""

from __future__ import annotations

import os
import socket
from contextlib import closing

from . import sync
from .abcs import Mapping
from .cgroup_link import open_container_cgroup
from .errors import InvalidState
from .init import InitContext
from .launcher import launch
from .lazylog import getLogger
from .namespaces import PROC_NAMES, NamespacePlan, open_join_fds
from .spec import validate_process
from .state import StateStore
from .status import container_status

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)


def exec_process(
    store: StateStore,
    container_id: str,
    process: Mapping[str, Any],
    console_socket: str | None = None,
    preserve_fds: int = 0,
    seccomp_program: bytes | None = None,
    stdio: tuple[int, int, int] | None = None,
) -> int:
    """Start ``process`` (OCI process object) in the container; returns its host pid once it is ready to exec."""
    record = store.load(container_id)
    status = container_status(store, record)
    if status not in ("running", "created"):
        raise InvalidState(f"cannot exec in a {status} container")
    spec = store.load_config(container_id)
    validate_process(process)
    linux = spec.get("linux", {}) or {}
    exec_spec = {**spec, "process": dict(process)}
    if seccomp_program is None and linux.get("seccomp"):
        from .seccomp_bpf import program_for

        seccomp_program = program_for(linux["seccomp"], cache_dir=store.seccomp_cache_dir())
    plan = NamespacePlan(join=_namespaces_to_join(record.pid, [str(n["type"]) for n in linux.get("namespaces", [])]))
    console = None
    if process.get("terminal"):
        if not console_socket:
            raise InvalidState("process.terminal needs a console socket")
        console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        console.connect(console_socket)
        console.set_inheritable(True)
    cgroup = open_container_cgroup(record.cgroup_path, record.id) if record.cgroup_path else None
    try:
        ctx = InitContext(
            spec=exec_spec,
            bundle=record.bundle,
            rootfs=record.rootfs,
            plan=plan,
            sync_sock=socket.socket(),
            join_fds=open_join_fds(plan),
            console_sock=console,
            seccomp_program=seccomp_program,
            preserve_fds=preserve_fds,
            setup_rootfs=False,
            stdio=stdio,
        )
        ctx.sync_sock.close()
        pid, sock = launch(ctx, cgroup)
        with closing(sock):
            sync.expect(sock, "ready")
    finally:
        if console is not None:
            console.close()
    return pid


def _namespaces_to_join(init_pid: int, types: list[str]) -> list[tuple[str, str]]:
    """The init's namespaces that differ from ours (setns into our own user namespace is EINVAL)."""
    order = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
    joins = []
    for ns_type in order:
        if ns_type not in types:
            continue
        name = PROC_NAMES[ns_type]
        theirs = f"/proc/{init_pid}/ns/{name}"
        try:
            if os.readlink(theirs) == os.readlink(f"/proc/self/ns/{name}"):
                continue
        except OSError as exc:
            raise InvalidState(f"container init {init_pid} is gone: {exc.strerror}") from None
        joins.append((ns_type, theirs))
    return joins

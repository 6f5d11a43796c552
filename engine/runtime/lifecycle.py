"""The verbs that act on an existing container: start, kill, delete, pause, resume, update, ps.

Each follows runtime.md#operations and runc's messages for the refusals.
"""

from __future__ import annotations

import errno
import os
import select
import time

from . import hooks, signals
from .abcs import Mapping
from .cgroup_link import CgroupHandle, open_container_cgroup, require_cgroup
from .errors import InvalidState
from .lazylog import getLogger
from .procinfo import is_running, reap_if_child
from .state import ContainerRecord, StateStore
from .status import container_status, hook_state

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)

# Bound on waiting for killed tasks to leave the cgroup before removing it.
CGROUP_EMPTY_TIMEOUT_S = 10.0


def start_container(store: StateStore, container_id: str) -> None:
    """runtime.md#start: let the init exec the user's process, then run poststart hooks."""
    with store.locked(container_id):
        record = store.load(container_id)
        status = container_status(store, record)
        if status != "created":
            raise InvalidState(f"cannot start a container that has {status}" if status == "stopped"
                               else f"cannot start an already {status} container")
        # Read before the release: a process that exits at once may be reaped, and its
        # state deleted by the supervisor, before we get here again (as runc, which
        # holds the config in memory).
        spec = store.load_config(container_id)
        fifo = store.fifo_path(container_id)
        _release_init(fifo, record)
        os.unlink(fifo)
    hooks.run_hooks_logged(spec, "poststart", hook_state(record, "running"))


def _release_init(fifo: str, record: ContainerRecord) -> None:
    """Open exec.fifo for reading: the init, blocked opening it for writing, proceeds and writes one byte.

    Opened non-blocking and polled while watching the init, so a dead init
    makes `start` fail instead of hang (runc's handleFifoResult does the same).
    """
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100):
                data = os.read(fd, 1)
                if data:
                    return
            if not is_running(record.pid, record.pid_start_time):
                raise InvalidState("cannot start a container that has stopped (its init exited)")
    finally:
        os.close(fd)


def parse_signal(value: str | int) -> int:
    """runc accepts "KILL", "SIGKILL" or "9"."""
    import signal  # its Signals enum for names: kill only, not the run path (signals.py)

    if isinstance(value, int) or str(value).isdigit():
        number = int(value)
        signal.Signals(number)
        return number
    name = str(value).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"unknown signal {value!r}") from None


def kill_container(
    store: StateStore, container_id: str, sig: int = signals.SIGTERM, all_processes: bool = False
) -> None:
    record = store.load(container_id)
    status = container_status(store, record)
    if status == "stopped" and not all_processes:
        raise InvalidState("container not running")
    if all_processes:
        cgroup = open_container_cgroup(record.cgroup_path, record.id) if record.cgroup_path else None
        if cgroup is not None:
            for pid in cgroup.pids():
                _signal(pid, sig)
            if status == "paused" and sig == signals.SIGKILL:
                cgroup.thaw()  # frozen tasks act on SIGKILL only once thawed (runc does the same)
            return
    if status != "stopped":
        _signal(record.pid, sig)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_for_exit(pid: int, start: int | None) -> None:
    """Block until ``pid`` has exited (zombie or gone), child or not: pidfd_open + poll."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError as exc:
        # EINVAL: the pid is still allocated but no longer has a task, i.e. its parent is reaping
        # it right now (kernel pidfd_create: !pid_has_task(pid, PIDTYPE_TGID)).  The supervisor
        # that reaps the init races `delete --force` like this; seen under QEMU TCG.
        if exc.errno == errno.EINVAL:
            return
        raise
    try:
        if not is_running(pid, start):
            return
        select.select([pidfd], [], [])
    finally:
        os.close(pidfd)


def delete_container(store: StateStore, container_id: str, force: bool = False) -> int | None:
    """runtime.md#delete: refuse a live container unless forced; free everything; poststop hooks.

    Returns the init's exit code if this call reaped it (the caller was its parent), else None.
    """
    with store.locked(container_id):
        record = store.load(container_id)
        status = container_status(store, record)
        cgroup = open_container_cgroup(record.cgroup_path, record.id) if record.cgroup_path else None
        if status in ("running", "paused") and not force:
            raise InvalidState(f"cannot delete container {container_id} that is not stopped: {status}")
        if status != "stopped":
            # runc kills a created container on plain delete, and anything with --force.
            _kill_everything(record, cgroup)
        exit_code = reap_if_child(record.pid)
        if cgroup is not None:
            destroy_cgroup(container_id, cgroup)
        spec = store.load_config(container_id)
        store.remove(container_id)
    hooks.run_hooks_logged(spec, "poststop", hook_state(record, "stopped"))
    return exit_code


def _kill_everything(record: ContainerRecord, cgroup: CgroupHandle | None) -> None:
    if cgroup is not None:
        for pid in cgroup.pids():
            _signal(pid, signals.SIGKILL)
        if cgroup.is_frozen():
            cgroup.thaw()  # SIGKILL is only delivered to thawed tasks
    _signal(record.pid, signals.SIGKILL)
    wait_for_exit(record.pid, record.pid_start_time)


def destroy_cgroup(container_id: str, cgroup: CgroupHandle) -> None:
    """Remove the cgroup once SIGKILLed tasks have left it (exit is asynchronous; runc retries rmdir too)."""
    from .cgroups.errors import CgroupBusy  # a handle exists, so the cgroup manager does

    try:
        cgroup.destroy()  # the usual case, a container that has exited: one listing of its tasks, not two
        return
    except CgroupBusy:
        pass
    except Exception as exc:
        log.warning("cannot remove cgroup of %s: %s", container_id, exc)
        return
    deadline = time.monotonic() + CGROUP_EMPTY_TIMEOUT_S
    delay = 0.001
    while time.monotonic() < deadline:
        members = cgroup.pids()
        if not members:
            break
        for pid in members:
            reap_if_child(pid)  # a zombie stays a member until its parent (maybe us, a subreaper) reaps it
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    try:
        cgroup.destroy()
    except Exception as exc:
        log.warning("cannot remove cgroup of %s: %s", container_id, exc)


def pause_container(store: StateStore, container_id: str) -> None:
    record = store.load(container_id)
    status = container_status(store, record)
    if status not in ("running", "created"):
        raise InvalidState(f"container not running or created: {status}")
    _cgroup(record, "pause").freeze()


def resume_container(store: StateStore, container_id: str) -> None:
    record = store.load(container_id)
    if container_status(store, record) != "paused":
        raise InvalidState("container not paused")
    _cgroup(record, "resume").thaw()


def update_container(store: StateStore, container_id: str, resources: Mapping[str, Any]) -> None:
    record = store.load(container_id)
    if container_status(store, record) == "stopped":
        raise InvalidState("container not running")
    _cgroup(record, "update").set_resources(resources)


def container_pids(store: StateStore, container_id: str) -> list[int]:
    """`ps`: every process of the container (cgroup members, else the init's PID namespace)."""
    record = store.load(container_id)
    if container_status(store, record) == "stopped":
        return []
    cgroup = open_container_cgroup(record.cgroup_path, record.id) if record.cgroup_path else None
    if cgroup is not None:
        return sorted(cgroup.pids())
    return _pids_in_namespace(record.pid)


def _pids_in_namespace(init_pid: int) -> list[int]:
    try:
        target = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == target:
                    pids.append(int(name))
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ESRCH):
                    raise
    return sorted(pids)


def _cgroup(record: ContainerRecord, what: str) -> CgroupHandle:
    cgroup = open_container_cgroup(record.cgroup_path, record.id) if record.cgroup_path else None
    return require_cgroup(cgroup, what)

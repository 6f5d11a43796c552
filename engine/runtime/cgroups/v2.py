"""cgroup v2 (unified hierarchy) manager (Documentation/admin-guide/cgroup-v2.rst)."""

from __future__ import annotations

import os

from engine.runtime import signals, syscalls
from engine.runtime.abcs import Iterable, Mapping
from engine.runtime.cgroups import fsio
from engine.runtime.cgroups.base import FREEZE_TIMEOUT_S, Cgroup, wait_for
from engine.runtime.cgroups.devices import parse_rules
from engine.runtime.cgroups.errors import CgroupBusy, CgroupError, CgroupNotFound, ControllerUnavailable
from engine.runtime.cgroups.hierarchy import UNIFIED, CgroupMount
from engine.runtime.cgroups.resources import FileWrite
from engine.runtime.cgroups.resources_v2 import plan_v2
from engine.runtime.lazylog import getLogger

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from engine.runtime.cgroups.stats import CgroupStats

log = getLogger(__name__)

#: Controllers create() enables for a container when the parent offers them.
#: Others (hugetlb, rdma, misc) are enabled only when set_resources needs them.
DEFAULT_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")


def _ancestors(cgroup_path: str) -> list[str]:
    """Cgroup paths from the root down to the parent of ``cgroup_path``."""
    parts = [p for p in cgroup_path.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts))]


def enable_controllers(mount: CgroupMount, cgroup_path: str, wanted: Iterable[str], strict: bool) -> set[str]:
    """Enable ``wanted`` in cgroup.subtree_control of every ancestor of ``cgroup_path``.

    A controller's files appear in a cgroup only when its parent enables it
    ("Enabling and Disabling", cgroup-v2.rst), which requires the grandparent
    to enable it too.  Returns the controllers available at the cgroup.  With
    ``strict``, a controller that cannot be enabled raises ControllerUnavailable;
    otherwise it is logged (e.g. EBUSY: the parent holds processes, the
    "no internal processes" rule).
    """
    wanted = list(dict.fromkeys(wanted))
    available = set(wanted)
    for anc in _ancestors(cgroup_path):
        directory = mount.directory(anc)
        offered = set(fsio.read(directory, "cgroup.controllers").split())
        enabled = set(fsio.read(directory, "cgroup.subtree_control").split())
        for name in wanted:
            if name not in available or name in enabled:
                continue
            if name not in offered:
                available.discard(name)
                continue
            try:
                fsio.write(directory, "cgroup.subtree_control", f"+{name}")
            except CgroupError as e:
                available.discard(name)
                if strict:
                    raise ControllerUnavailable(f"cannot enable the {name} controller in {directory}: {e}") from e
                log.warning("cannot enable the %s controller in %s: %s", name, directory, e)
    if strict:
        missing = [n for n in wanted if n not in available]
        if missing:
            raise ControllerUnavailable(
                f"controllers {missing} are not available to {cgroup_path} on the v2 hierarchy {mount.mountpoint}"
            )
    return available


def apply_writes(directory: str, writes: Iterable[FileWrite]) -> None:
    """Carry out a plan in one directory, trying each write's fallbacks when the file is missing."""
    for w in writes:
        attempts = [(w.name, w.value), *w.fallbacks]
        for i, (name, value) in enumerate(attempts):
            try:
                fsio.write(directory, name, value)
                break
            except ControllerUnavailable:
                if i == len(attempts) - 1:
                    raise
                log.debug("%s missing in %s, trying %s", name, directory, attempts[i + 1][0])


def attach_device_program(directory: str, program: bytes) -> None:
    """Load ``program`` and make it the only device filter attached to the cgroup at ``directory``.

    Attached with BPF_F_ALLOW_MULTI (as runc does) so that a nested runtime may
    add its own filter below; every program on the path must allow an access.
    The new program goes in before the old ones come out, so there is no window
    without a filter.
    """
    dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old_ids = syscalls.bpf_prog_query(dirfd, syscalls.BPF_CGROUP_DEVICE)
        prog_fd = syscalls.bpf_prog_load(
            syscalls.BPF_PROG_TYPE_CGROUP_DEVICE, program, expected_attach_type=syscalls.BPF_CGROUP_DEVICE
        )
        try:
            syscalls.bpf_prog_attach(dirfd, prog_fd, syscalls.BPF_CGROUP_DEVICE, syscalls.BPF_F_ALLOW_MULTI)
        finally:
            os.close(prog_fd)  # the attachment holds its own reference
        for prog_id in old_ids:
            old_fd = syscalls.bpf_prog_get_fd_by_id(prog_id)
            try:
                syscalls.bpf_prog_detach(dirfd, old_fd, syscalls.BPF_CGROUP_DEVICE)
            finally:
                os.close(old_fd)
    except OSError as e:
        raise CgroupError(f"cannot install the device filter on {directory}: {e}") from e
    finally:
        os.close(dirfd)


class V2Cgroup(Cgroup):
    def __init__(self, mount: CgroupMount, cgroup_path: str) -> None:
        self.mount = mount
        self.cgroup_path = "/" + cgroup_path.strip("/")
        if self.cgroup_path == "/":
            raise CgroupError("refusing to manage the root of the v2 hierarchy as a container cgroup")
        self.dir = mount.directory(self.cgroup_path)

    def __repr__(self) -> str:
        return f"V2Cgroup({self.dir!r})"

    @property
    def path(self) -> str:
        return self.cgroup_path

    def directories(self) -> dict[str, str]:
        return {UNIFIED: self.dir}

    def _require(self) -> None:
        if not os.path.isdir(self.dir):
            raise CgroupNotFound(f"cgroup {self.dir} does not exist")

    def create(self) -> None:
        for anc in [*_ancestors(self.cgroup_path)[1:], self.cgroup_path]:
            try:
                os.mkdir(self.mount.directory(anc))
            except FileExistsError:
                continue
            except OSError as e:
                raise CgroupError(f"mkdir {self.mount.directory(anc)}: {e.strerror}") from e
        enable_controllers(self.mount, self.cgroup_path, DEFAULT_CONTROLLERS, strict=False)

    def add_process(self, pid: int) -> None:
        self._require()
        fsio.write(self.dir, "cgroup.procs", str(pid))

    def join_plan(self) -> tuple[str | None, list[str]]:
        return self.dir, []

    def set_resources(self, resources: Mapping[str, Any]) -> None:
        self._require()
        plan = plan_v2(resources)
        needed = [w.controller for w in plan if w.controller]
        if needed:
            enable_controllers(self.mount, self.cgroup_path, needed, strict=True)
        apply_writes(self.dir, plan)
        if resources.get("devices") is not None:
            from engine.runtime.cgroups.devices_bpf import build_program  # pure v2 only: not on a v1 or hybrid run

            attach_device_program(self.dir, build_program(parse_rules(resources["devices"])))

    def freeze(self) -> None:
        self._require()
        fsio.write(self.dir, "cgroup.freeze", "1")
        wait_for(self.is_frozen, FREEZE_TIMEOUT_S, f"{self.dir} to freeze")

    def thaw(self) -> None:
        self._require()
        fsio.write(self.dir, "cgroup.freeze", "0")

    def is_frozen(self) -> bool:
        # cgroup.events "frozen 1" once every descendant task is stopped (cgroup-v2.rst, "Core Interface Files").
        return fsio.parse_flat_keyed(fsio.read(self.dir, "cgroup.events")).get("frozen") == 1

    def pids(self) -> list[int]:
        self._require()
        return fsio.procs_in(fsio.walk_bottom_up(self.dir))

    def stats(self) -> CgroupStats:
        from engine.runtime.cgroups.stats import CgroupStats, parse_v2_io_stat  # only stats needs it

        self._require()
        d = self.dir
        st = CgroupStats()
        cpu = fsio.parse_flat_keyed(fsio.read_optional(d, "cpu.stat"))
        if "usage_usec" in cpu:
            st.cpu_total_ns = cpu["usage_usec"] * 1000
            st.cpu_user_ns = cpu.get("user_usec", 0) * 1000
            st.cpu_system_ns = cpu.get("system_usec", 0) * 1000
        if "nr_periods" in cpu:  # present only with the cpu controller enabled
            st.throttling_periods = cpu["nr_periods"]
            st.throttled_periods = cpu.get("nr_throttled", 0)
            st.throttled_time_ns = cpu.get("throttled_usec", 0) * 1000
        st.memory_usage = fsio.parse_int(fsio.read_optional(d, "memory.current"))
        st.memory_limit = fsio.parse_limit(fsio.read_optional(d, "memory.max"))
        st.memory_max_usage = fsio.parse_int(fsio.read_optional(d, "memory.peak"))  # kernel >= 5.19
        mem_text = fsio.read_optional(d, "memory.stat")
        if mem_text is not None:
            st.memory_stat = fsio.parse_flat_keyed(mem_text)
            st.memory_cache = st.memory_stat.get("file")
            st.memory_rss = st.memory_stat.get("anon")
        st.pids_current = fsio.parse_int(fsio.read_optional(d, "pids.current"))
        st.pids_limit = fsio.parse_limit(fsio.read_optional(d, "pids.max"))
        st.blkio_service_bytes = parse_v2_io_stat(fsio.read_optional(d, "io.stat"))
        return st

    def oom_kills(self) -> int:
        self._require()
        events = fsio.read_optional(self.dir, "memory.events")
        if events is None:
            raise ControllerUnavailable(f"{self.dir} has no memory controller: OOM kills are not counted")
        return fsio.parse_flat_keyed(events).get("oom_kill", 0)

    def kill_all(self, sig: int) -> None:
        # cgroup.kill (kernel >= 5.14) SIGKILLs the whole subtree atomically, even
        # processes forking at that moment; other signals take the generic path.
        if sig == signals.SIGKILL and os.path.exists(os.path.join(self.dir, "cgroup.kill")):
            fsio.write(self.dir, "cgroup.kill", "1")
            return
        super().kill_all(sig)

    def destroy(self) -> None:
        if not os.path.isdir(self.dir):
            return
        remaining = self.pids()
        if remaining:
            raise CgroupBusy(self.dir, remaining)
        for directory in fsio.walk_bottom_up(self.dir):
            fsio.rmdir(directory)

"""cgroup v1 manager: one directory per hierarchy (Documentation/admin-guide/cgroup-v1/).

On a hybrid host the manager also keeps a directory in the unified (v2)
hierarchy, as runc does: the container's processes join it too, raw
``unified`` keys are written there, and a controller that only v2 offers
(hugetlb on some hosts) is used from there.
"""

from __future__ import annotations

import os

from engine.runtime.abcs import Mapping
from engine.runtime.cgroups import fsio
from engine.runtime.cgroups.base import FREEZE_TIMEOUT_S, Cgroup, wait_for
from engine.runtime.cgroups.cgpath import format_resolved
from engine.runtime.cgroups.errors import (
    CgroupBusy,
    CgroupError,
    CgroupNotFound,
    ControllerUnavailable,
    InvalidResources,
)
from engine.runtime.cgroups.hierarchy import UNIFIED, CgroupMount
from engine.runtime.cgroups.resources import FileWrite, unified_entries
from engine.runtime.cgroups.resources_v1 import plan_v1
from engine.runtime.cgroups.resources_v2 import KNOWN_CONTROLLERS
from engine.runtime.cgroups.v2 import apply_writes, enable_controllers
from engine.runtime.lazylog import getLogger

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from engine.runtime.cgroups.stats import CgroupStats

log = getLogger(__name__)

# cpuacct.stat counts in USER_HZ ticks (cgroup-v1/cpuacct.rst).
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class V1Cgroup(Cgroup):
    """``mounts``/``paths``: per key (a v1 controller, or UNIFIED on a hybrid host), the
    mount of its hierarchy and the cgroup path from that hierarchy's root."""

    def __init__(self, mounts: Mapping[str, CgroupMount], paths: Mapping[str, str]) -> None:
        self.mounts = dict(mounts)
        self.paths = {k: "/" + paths[k].strip("/") for k in mounts}
        for key, p in self.paths.items():
            if p == "/":
                raise CgroupError(f"refusing to manage the root of the {key or 'unified'} hierarchy")
        self.dirs = {k: m.directory(self.paths[k]) for k, m in self.mounts.items()}

    def __repr__(self) -> str:
        return f"V1Cgroup({self.path!r})"

    @property
    def path(self) -> str:
        return format_resolved(self.paths)

    def directories(self) -> dict[str, str]:
        return dict(self.dirs)

    def _unique_dirs(self) -> list[str]:
        # cpu and cpuacct (or any co-mounted controllers) share one directory.
        return list(dict.fromkeys(self.dirs.values()))

    def _dir(self, controller: str) -> str:
        d = self.dirs.get(controller)
        if d is None:
            raise ControllerUnavailable(f"the {controller} controller is not mounted on this host")
        if not os.path.isdir(d):
            raise CgroupNotFound(f"cgroup {d} does not exist")
        return d

    # -- lifecycle ------------------------------------------------------------

    def create(self) -> None:
        done: set[str] = set()
        for key, mount in self.mounts.items():
            if self.dirs[key] in done:
                continue
            done.add(self.dirs[key])
            self._make(mount, self.paths[key], cpuset="cpuset" in mount.controllers)

    @staticmethod
    def _make(mount: CgroupMount, cgroup_path: str, cpuset: bool) -> None:
        parts = [p for p in cgroup_path.split("/") if p]
        parent = mount.directory("/" + "/".join(parts[:0]))
        for i in range(1, len(parts) + 1):
            directory = mount.directory("/" + "/".join(parts[:i]))
            try:
                os.mkdir(directory)
            except FileExistsError:
                pass
            except OSError as e:
                raise CgroupError(f"mkdir {directory}: {e.strerror}") from e
            if cpuset:
                # A new v1 cpuset starts with empty cpus and mems, and a task cannot
                # join it (ENOSPC) until they are set (cgroup-v1/cpusets.rst): copy the parent's.
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not fsio.read(directory, name).strip():
                        fsio.write(directory, name, fsio.read(parent, name).strip())
            parent = directory

    def add_process(self, pid: int) -> None:
        for d in self._unique_dirs():
            if not os.path.isdir(d):
                raise CgroupNotFound(f"cgroup {d} does not exist")
            fsio.write(d, "cgroup.procs", str(pid))

    def join_plan(self) -> tuple[str | None, list[str]]:
        unified = self.dirs.get(UNIFIED)
        return unified, [d for d in self._unique_dirs() if d != unified]

    def destroy(self) -> None:
        tree = self._tree()  # walked once, for both the check and the rmdirs
        remaining = fsio.procs_in(tree)
        if remaining:
            raise CgroupBusy(self.path, remaining)
        for directory in tree:
            fsio.rmdir(directory)

    def _tree(self) -> list[str]:
        """Every directory of this cgroup that exists, in every hierarchy, deepest first."""
        return [directory for d in self._unique_dirs() for directory in fsio.walk_bottom_up(d)]

    # -- resources --------------------------------------------------------------

    def set_resources(self, resources: Mapping[str, Any]) -> None:
        current_memsw = None
        if resources.get("memory") and "memory" in self.dirs:
            current_memsw = fsio.parse_limit(fsio.read_optional(self._dir("memory"), "memory.memsw.limit_in_bytes"))
        checked: dict[str, str] = {}
        for w in plan_v1(resources, current_memsw):
            if w.controller == "hugetlb" and "hugetlb" not in self.dirs and UNIFIED in self.dirs:
                self._write_unified([FileWrite("hugetlb", w.name.replace(".limit_in_bytes", ".max"), w.value)])
                continue
            if w.name == "memory.memsw.limit_in_bytes" and not os.path.exists(
                os.path.join(self._dir("memory"), w.name)
            ):
                # No swap accounting (swapaccount=0 or no CONFIG_MEMCG_SWAP): runc ignores swap then.
                log.warning("memory.swap ignored: %s has no memory.memsw.limit_in_bytes", self._dir("memory"))
                continue
            if w.controller not in checked:  # one isdir per controller, not per write (13 device rules)
                checked[w.controller] = self._dir(w.controller)
            apply_writes(checked[w.controller], [w])
        unified = unified_entries(resources)
        if unified:
            if UNIFIED not in self.dirs:
                raise InvalidResources("linux.resources.unified needs a cgroup v2 hierarchy; this host has only v1")
            writes = []
            for key, value in unified:
                prefix = key.split(".", 1)[0]
                writes.append(FileWrite(prefix if prefix in KNOWN_CONTROLLERS else "", key, value))
            self._write_unified(writes)

    def _write_unified(self, writes: list[FileWrite]) -> None:
        mount, path = self.mounts[UNIFIED], self.paths[UNIFIED]
        needed = [w.controller for w in writes if w.controller]
        if needed:
            enable_controllers(mount, path, needed, strict=True)
        apply_writes(self.dirs[UNIFIED], writes)

    # -- freezer ---------------------------------------------------------------

    def freeze(self) -> None:
        d = self._dir("freezer")
        fsio.write(d, "freezer.state", "FROZEN")

        def frozen() -> bool:
            state = fsio.read(d, "freezer.state").strip()
            if state == "THAWED":  # a concurrent thaw, or a task that escaped: ask again (runc does)
                fsio.write(d, "freezer.state", "FROZEN")
            return state == "FROZEN"

        wait_for(frozen, FREEZE_TIMEOUT_S, f"{d} to freeze")

    def thaw(self) -> None:
        fsio.write(self._dir("freezer"), "freezer.state", "THAWED")

    def is_frozen(self) -> bool:
        if "freezer" not in self.dirs:  # nothing can have frozen it
            return False
        return fsio.read(self._dir("freezer"), "freezer.state").strip() == "FROZEN"

    # -- observation -------------------------------------------------------------

    def pids(self) -> list[int]:
        tree = self._tree()
        if not tree:
            raise CgroupNotFound(f"cgroup {self.path} does not exist")
        return fsio.procs_in(tree)

    def stats(self) -> CgroupStats:
        from engine.runtime.cgroups.stats import CgroupStats, parse_v1_blkio  # only stats needs it

        st = CgroupStats()
        if "cpuacct" in self.dirs:
            d = self._dir("cpuacct")
            st.cpu_total_ns = fsio.parse_int(fsio.read_optional(d, "cpuacct.usage"))
            st.cpu_user_ns = fsio.parse_int(fsio.read_optional(d, "cpuacct.usage_user"))
            st.cpu_system_ns = fsio.parse_int(fsio.read_optional(d, "cpuacct.usage_sys"))
            if st.cpu_user_ns is None:  # older kernels: only cpuacct.stat, in USER_HZ ticks
                ticks = fsio.parse_flat_keyed(fsio.read_optional(d, "cpuacct.stat"))
                st.cpu_user_ns = ticks.get("user", 0) * 1_000_000_000 // _CLK_TCK
                st.cpu_system_ns = ticks.get("system", 0) * 1_000_000_000 // _CLK_TCK
            percpu = fsio.read_optional(d, "cpuacct.usage_percpu")
            st.cpu_per_cpu_ns = [int(x) for x in (percpu or "").split()]
        if "cpu" in self.dirs:
            cpu = fsio.parse_flat_keyed(fsio.read_optional(self._dir("cpu"), "cpu.stat"))
            if "nr_periods" in cpu:
                st.throttling_periods = cpu["nr_periods"]
                st.throttled_periods = cpu.get("nr_throttled", 0)
                st.throttled_time_ns = cpu.get("throttled_time", 0)
        if "memory" in self.dirs:
            d = self._dir("memory")
            st.memory_usage = fsio.parse_int(fsio.read_optional(d, "memory.usage_in_bytes"))
            st.memory_limit = fsio.parse_limit(fsio.read_optional(d, "memory.limit_in_bytes"))
            st.memory_max_usage = fsio.parse_int(fsio.read_optional(d, "memory.max_usage_in_bytes"))
            st.memory_stat = fsio.parse_flat_keyed(fsio.read_optional(d, "memory.stat"))
            # total_* include descendants (use_hierarchy is always on since 5.x kernels).
            st.memory_cache = st.memory_stat.get("total_cache", st.memory_stat.get("cache"))
            st.memory_rss = st.memory_stat.get("total_rss", st.memory_stat.get("rss"))
        if "pids" in self.dirs:
            d = self._dir("pids")
            st.pids_current = fsio.parse_int(fsio.read_optional(d, "pids.current"))
            st.pids_limit = fsio.parse_limit(fsio.read_optional(d, "pids.max"))
        if "blkio" in self.dirs:
            d = self._dir("blkio")
            # CFQ's files when present (what Docker reads first), else the throttle
            # layer's, which counts every device whatever its scheduler.
            for name in ("blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"):
                entries = parse_v1_blkio(fsio.read_optional(d, name))
                if entries:
                    st.blkio_service_bytes = entries
                    break
        return st

    def oom_kills(self) -> int:
        control = fsio.parse_flat_keyed(fsio.read(self._dir("memory"), "memory.oom_control"))
        if "oom_kill" not in control:  # kernel < 4.13
            raise ControllerUnavailable("memory.oom_control has no oom_kill counter on this kernel")
        return control["oom_kill"]

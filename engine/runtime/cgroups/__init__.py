"""cgroups v1, v2 and hybrid behind one interface, for Berth's OCI runtime.

    cg = open_cgroup(spec["linux"].get("cgroupsPath"), container_id)
    cg.create(); cg.set_resources(spec["linux"].get("resources", {})); cg.add_process(pid)
    state["cgroup_path"] = cg.path          # later verbs: open_cgroup(state["cgroup_path"], id)

The host's mode is detected each time (hierarchy.py); path semantics are
runc's (cgpath.py).  On a hybrid host (v1 controllers plus a v2 mount with
none of them) the v1 manager is used and also keeps a directory in the v2
hierarchy.  The v2 device filter is an eBPF program (devices_bpf.py).

Known limits (each logged when met, never silently dropped): real-time cpu
and rdma are ignored; swappiness, disableOOMKiller and net_cls/net_prio have
no v2 equivalent; the name=systemd v1 hierarchy is not joined; on recent
kernels v1 counts block I/O bytes per device only for devices that carry a
throttle rule (blkio.throttle.*), so stats may list no device otherwise.
"""

from __future__ import annotations

from engine.runtime.cgroups.base import Cgroup
from engine.runtime.cgroups.cgpath import resolve, v2_nesting_base
from engine.runtime.cgroups.errors import (
    CgroupBusy,
    CgroupError,
    CgroupNotFound,
    ControllerUnavailable,
    DetectionFailed,
    InvalidResources,
)
from engine.runtime.cgroups.hierarchy import UNIFIED, Hierarchies, Mode, detect
from engine.runtime.cgroups.v1 import V1Cgroup
from engine.runtime.cgroups.v2 import V2Cgroup

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from engine.runtime.cgroups.stats import BlkioDeviceBytes, CgroupStats

__all__ = [
    "BlkioDeviceBytes",
    "Cgroup",
    "CgroupBusy",
    "CgroupError",
    "CgroupNotFound",
    "CgroupStats",
    "ControllerUnavailable",
    "DetectionFailed",
    "Hierarchies",
    "InvalidResources",
    "Mode",
    "V1Cgroup",
    "V2Cgroup",
    "detect",
    "open_cgroup",
    "open_in",
]


def open_in(hierarchies: Hierarchies, cgroups_path: str | None, container_id: str) -> Cgroup:
    """The container's cgroup on already-detected ``hierarchies`` (no files are touched)."""
    if hierarchies.mode == "v2":
        assert hierarchies.v2 is not None
        own = {UNIFIED: v2_nesting_base(hierarchies.own_path(UNIFIED))}
        paths = resolve(cgroups_path, container_id, [UNIFIED], own)
        return V2Cgroup(hierarchies.v2, paths[UNIFIED])
    mounts = dict(hierarchies.v1)
    if hierarchies.mode == "hybrid" and hierarchies.v2 is not None:
        mounts[UNIFIED] = hierarchies.v2
    paths = resolve(cgroups_path, container_id, mounts, hierarchies.own)
    return V1Cgroup(mounts, paths)


def open_cgroup(cgroups_path: str | None, container_id: str) -> Cgroup:
    """The container's cgroup for OCI ``linux.cgroupsPath`` (None: ``berth/<container_id>``).

    Nothing is created: call ``create()``.  ``Cgroup.path`` is the store-able
    path that reopens the same directories from any caller.
    """
    return open_in(detect(), cgroups_path, container_id)


def __getattr__(name: str) -> Any:
    """The stats types, imported on first use: creating and running containers never needs them."""
    if name in ("BlkioDeviceBytes", "CgroupStats"):
        from engine.runtime.cgroups import stats

        return getattr(stats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

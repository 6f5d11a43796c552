"""OCI ``linux.resources`` → cgroup v1 file writes (Documentation/admin-guide/cgroup-v1/).

runtime-spec config-linux.md#control-groups defines the input; the file names
and units are the v1 controllers' own.  OCI ``memory.swap`` is the v1
memory+swap limit (memory.memsw.limit_in_bytes), not the swap alone.
"""

from __future__ import annotations

from engine.runtime.abcs import Mapping
from engine.runtime.cgroups.devices import parse_rules
from engine.runtime.cgroups.errors import InvalidResources
from engine.runtime.cgroups.resources import (
    FileWrite,
    device_entries,
    hugepage_limits,
    ignored,
    integer,
    section,
)

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

_THROTTLE_FILES = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


def _memory(resources: Mapping[str, Any], current_memsw: int | None) -> list[FileWrite]:
    mem = section(resources, "memory")
    out: list[FileWrite] = []
    limit = integer(mem, "limit", "memory")
    swap = integer(mem, "swap", "memory")
    if limit is not None and swap is not None and swap != -1 and limit != -1 and swap < limit:
        raise InvalidResources(f"memory.swap ({swap}) is memory+swap on v1 and must be >= memory.limit ({limit})")
    limit_w = FileWrite("memory", "memory.limit_in_bytes", str(limit)) if limit is not None else None
    swap_w = FileWrite("memory", "memory.memsw.limit_in_bytes", str(swap)) if swap is not None else None
    # The kernel keeps limit <= memsw at every moment: raising both needs memsw
    # first, lowering needs the limit first.  current_memsw None means unlimited.
    if limit_w and swap_w and limit is not None:
        limit_fits_now = current_memsw is None or (limit != -1 and limit <= current_memsw)
        out += [limit_w, swap_w] if limit_fits_now else [swap_w, limit_w]
    else:
        out += [w for w in (limit_w, swap_w) if w]
    reservation = integer(mem, "reservation", "memory")
    if reservation is not None:
        out.append(FileWrite("memory", "memory.soft_limit_in_bytes", str(reservation)))
    swappiness = integer(mem, "swappiness", "memory")
    if swappiness is not None and swappiness != -1:
        if not 0 <= swappiness <= 100:
            raise InvalidResources(f"memory.swappiness must be within 0..100, got {swappiness}")
        out.append(FileWrite("memory", "memory.swappiness", str(swappiness)))
    if mem.get("disableOOMKiller"):
        out.append(FileWrite("memory", "memory.oom_control", "1"))
    for key in ("kernel", "kernelTCP"):
        if mem.get(key) is not None:
            ignored("memory", key, "kernel memory limits are deprecated (runtime-spec) and gone from recent kernels")
    return out


def _cpu(resources: Mapping[str, Any]) -> list[FileWrite]:
    cpu = section(resources, "cpu")
    out: list[FileWrite] = []
    shares = integer(cpu, "shares", "cpu")
    if shares:
        out.append(FileWrite("cpu", "cpu.shares", str(shares)))
    # Period before quota: the kernel checks the quota against the period in force.
    period = integer(cpu, "period", "cpu")
    if period:
        out.append(FileWrite("cpu", "cpu.cfs_period_us", str(period)))
    quota = integer(cpu, "quota", "cpu")
    if quota:
        out.append(FileWrite("cpu", "cpu.cfs_quota_us", str(quota)))
    burst = integer(cpu, "burst", "cpu")
    if burst is not None:
        out.append(FileWrite("cpu", "cpu.cfs_burst_us", str(burst)))
    idle = integer(cpu, "idle", "cpu")
    if idle is not None:
        out.append(FileWrite("cpu", "cpu.idle", str(idle)))
    for key in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(key):
            ignored("cpu", key, "real-time group scheduling is not supported by Berth")
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            out.append(FileWrite("cpuset", name, str(cpu[key])))
    return out


def _pids(resources: Mapping[str, Any]) -> list[FileWrite]:
    limit = integer(section(resources, "pids"), "limit", "pids")
    # runc: 0 leaves the limit alone, a negative value means no limit.
    if not limit:
        return []
    return [FileWrite("pids", "pids.max", str(limit) if limit > 0 else "max")]


def _blkio(resources: Mapping[str, Any]) -> list[FileWrite]:
    blk = section(resources, "blockIO")
    out: list[FileWrite] = []
    weight = integer(blk, "weight", "blockIO")
    if weight:
        out.append(FileWrite("blkio", "blkio.weight", str(weight), (("blkio.bfq.weight", str(weight)),)))
    leaf = integer(blk, "leafWeight", "blockIO")
    if leaf:
        out.append(FileWrite("blkio", "blkio.leaf_weight", str(leaf)))
    for dev in device_entries(blk, "weightDevice"):
        node = f"{dev['major']}:{dev['minor']}"
        if dev.get("weight"):
            value = f"{node} {dev['weight']}"
            out.append(FileWrite("blkio", "blkio.weight_device", value, (("blkio.bfq.weight_device", value),)))
        if dev.get("leafWeight"):
            out.append(FileWrite("blkio", "blkio.leaf_weight_device", f"{node} {dev['leafWeight']}"))
    for key, name in _THROTTLE_FILES.items():
        for dev in device_entries(blk, key):
            out.append(FileWrite("blkio", name, f"{dev['major']}:{dev['minor']} {int(dev.get('rate', 0))}"))
    return out


def _network(resources: Mapping[str, Any]) -> list[FileWrite]:
    net = section(resources, "network")
    out: list[FileWrite] = []
    class_id = integer(net, "classID", "network")
    if class_id is not None:
        out.append(FileWrite("net_cls", "net_cls.classid", str(class_id)))
    for prio in net.get("priorities") or []:
        out.append(FileWrite("net_prio", "net_prio.ifpriomap", f"{prio['name']} {int(prio['priority'])}"))
    return out


def plan_v1(resources: Mapping[str, Any], current_memsw: int | None = None) -> list[FileWrite]:
    """The v1 writes for ``resources``, in order.

    ``current_memsw`` is the cgroup's memory.memsw.limit_in_bytes now (None:
    unlimited), needed to order a memory and swap change.  ``unified`` keys
    are not part of the plan: they belong to the v2 hierarchy.
    """
    out = _memory(resources, current_memsw) + _cpu(resources) + _pids(resources) + _blkio(resources)
    for size, limit in hugepage_limits(resources):
        out.append(FileWrite("hugetlb", f"hugetlb.{size}.limit_in_bytes", str(limit)))
    out += _network(resources)
    for rule in parse_rules(resources.get("devices")):
        out.append(FileWrite("devices", "devices.allow" if rule.allow else "devices.deny", rule.v1_line()))
    if resources.get("rdma"):
        ignored("rdma", "*", "the rdma controller is not supported by Berth")
    return out

"""OCI ``linux.resources`` → cgroup v2 file writes (Documentation/admin-guide/cgroup-v2.rst).

The conversions are the ones runc and crun use, so a config behaves the same
under any runtime (runc libcontainer/cgroups/utils.go; crun's
cgroup-resources.c):

- cpu.weight = 1 + ((shares - 2) * 9999) / 262142  (shares 2..262144 → weight 1..10000)
- io.weight  = 1 + ((blkio weight - 10) * 9999) / 990  (10..1000 → 1..10000)
- memory.swap.max = OCI swap (memory+swap, as on v1) - memory limit
- cpu.max = "<quota|max> <period>"

Devices are not files on v2: see devices_bpf.py.  Settings v2 has no
equivalent for (swappiness, disableOOMKiller, kernel memory, net_cls/net_prio,
real-time cpu) are ignored with a warning, as runc does.
"""

from __future__ import annotations

from engine.runtime.abcs import Mapping
from engine.runtime.cgroups.errors import InvalidResources
from engine.runtime.cgroups.resources import (
    FileWrite,
    device_entries,
    hugepage_limits,
    ignored,
    integer,
    section,
    unified_entries,
)

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CFS_PERIOD_US = 100000  # kernel default for cpu.max's period

_THROTTLE_KEYS = {
    "throttleReadBpsDevice": "rbps",
    "throttleWriteBpsDevice": "wbps",
    "throttleReadIOPSDevice": "riops",
    "throttleWriteIOPSDevice": "wiops",
}

# v2 controllers that own interface files named "<controller>.<knob>".
KNOWN_CONTROLLERS = frozenset({"cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc"})


def cpu_weight_from_shares(shares: int) -> int:
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight_from_blkio(weight: int) -> int:
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_max(swap: int, limit: int | None) -> int | None:
    """memory.swap.max for OCI (memory+swap) ``swap``; None: leave unset; -1: "max"."""
    if swap == 0:
        return None
    if swap == -1:
        return -1
    if limit is None or limit == -1:
        raise InvalidResources("memory.swap needs memory.limit on cgroup v2 (swap.max = swap - limit)")
    if swap < limit:
        raise InvalidResources(f"memory.swap ({swap}) is memory+swap and must be >= memory.limit ({limit})")
    return swap - limit


def _max(value: int) -> str:
    return "max" if value < 0 else str(value)


def _memory(resources: Mapping[str, Any]) -> list[FileWrite]:
    mem = section(resources, "memory")
    out: list[FileWrite] = []
    limit = integer(mem, "limit", "memory")
    if limit is not None:
        out.append(FileWrite("memory", "memory.max", _max(limit)))
    swap = integer(mem, "swap", "memory")
    if swap is not None:
        converted = swap_max(swap, limit)
        if converted is not None:
            out.append(FileWrite("memory", "memory.swap.max", _max(converted)))
    elif limit == -1:
        # v1 compatibility (runc): an unlimited memory with no swap setting means unlimited swap too.
        out.append(FileWrite("memory", "memory.swap.max", "max"))
    reservation = integer(mem, "reservation", "memory")
    if reservation is not None:
        out.append(FileWrite("memory", "memory.low", _max(reservation)))
    swappiness = integer(mem, "swappiness", "memory")
    if swappiness is not None and swappiness != -1:
        ignored("memory", "swappiness", "cgroup v2 has no per-cgroup swappiness")
    if mem.get("disableOOMKiller"):
        ignored("memory", "disableOOMKiller", "cgroup v2 cannot disable the OOM killer")
    for key in ("kernel", "kernelTCP"):
        if mem.get(key) is not None:
            ignored("memory", key, "kernel memory is part of memory.max on cgroup v2")
    return out


def _cpu(resources: Mapping[str, Any]) -> list[FileWrite]:
    cpu = section(resources, "cpu")
    out: list[FileWrite] = []
    shares = integer(cpu, "shares", "cpu")
    if shares:
        if not 2 <= shares <= 262144:
            raise InvalidResources(f"cpu.shares must be within 2..262144, got {shares}")
        out.append(FileWrite("cpu", "cpu.weight", str(cpu_weight_from_shares(shares))))
    quota = integer(cpu, "quota", "cpu")
    period = integer(cpu, "period", "cpu")
    if quota or period:
        quota_s = "max" if not quota or quota < 0 else str(quota)
        out.append(FileWrite("cpu", "cpu.max", f"{quota_s} {period or DEFAULT_CFS_PERIOD_US}"))
    burst = integer(cpu, "burst", "cpu")
    if burst is not None:
        out.append(FileWrite("cpu", "cpu.max.burst", str(burst)))
    idle = integer(cpu, "idle", "cpu")
    if idle is not None:
        out.append(FileWrite("cpu", "cpu.idle", str(idle)))
    for key in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(key):
            ignored("cpu", key, "cgroup v2 has no real-time group scheduling interface")
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if cpu.get(key):
            out.append(FileWrite("cpuset", name, str(cpu[key])))
    return out


def _pids(resources: Mapping[str, Any]) -> list[FileWrite]:
    limit = integer(section(resources, "pids"), "limit", "pids")
    if not limit:
        return []
    return [FileWrite("pids", "pids.max", _max(limit))]


def _io(resources: Mapping[str, Any]) -> list[FileWrite]:
    blk = section(resources, "blockIO")
    out: list[FileWrite] = []
    # BFQ takes the blkio weight as is (io.bfq.weight, 1..1000); without BFQ,
    # io.weight takes the converted value (runc does the same).
    weight = integer(blk, "weight", "blockIO")
    if weight:
        out.append(
            FileWrite("io", "io.bfq.weight", str(weight), (("io.weight", f"default {io_weight_from_blkio(weight)}"),))
        )
    if blk.get("leafWeight"):
        ignored("blockIO", "leafWeight", "cgroup v2 has no leaf weights")
    for dev in device_entries(blk, "weightDevice"):
        node = f"{dev['major']}:{dev['minor']}"
        if dev.get("weight"):
            w = int(dev["weight"])
            fallback = (("io.weight", f"{node} {io_weight_from_blkio(w)}"),)
            out.append(FileWrite("io", "io.bfq.weight", f"{node} {w}", fallback))
    for key, knob in _THROTTLE_KEYS.items():
        for dev in device_entries(blk, key):
            # A rate of 0 removes the limit on v1; "max" does that on v2.
            rate = int(dev.get("rate", 0))
            out.append(FileWrite("io", "io.max", f"{dev['major']}:{dev['minor']} {knob}={rate or 'max'}"))
    return out


def plan_v2(resources: Mapping[str, Any]) -> list[FileWrite]:
    """The v2 file writes for ``resources``, in order (devices excluded: they need eBPF)."""
    out = _memory(resources) + _cpu(resources) + _pids(resources) + _io(resources)
    for size, limit in hugepage_limits(resources):
        out.append(FileWrite("hugetlb", f"hugetlb.{size}.max", _max(limit)))
    network = section(resources, "network")
    if network:
        ignored("network", "*", "net_cls/net_prio do not exist on cgroup v2")
    if resources.get("rdma"):
        ignored("rdma", "*", "the rdma controller is not supported by Berth")
    # "unified" comes last so its raw values override the converted ones (runtime-spec).
    for key, value in unified_entries(resources):
        prefix = key.split(".", 1)[0]
        out.append(FileWrite(prefix if prefix in KNOWN_CONTROLLERS else "", key, value))
    return out

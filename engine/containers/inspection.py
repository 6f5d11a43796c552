"""Looking into running containers: `top` (ps) and `stats` in the Engine API's shapes."""

from __future__ import annotations

import os
import time
from typing import Any

from engine.runtime.cgroups import CgroupStats

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_BOOT_TIME: float | None = None


def _boot_time() -> float:
    global _BOOT_TIME
    if _BOOT_TIME is None:
        with open("/proc/stat") as f:
            _BOOT_TIME = next(float(line.split()[1]) for line in f if line.startswith("btime "))
    return _BOOT_TIME


def _uid_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def top(pids: list[int]) -> dict[str, Any]:
    """`docker top` with ps's default columns (UID PID PPID C STIME TTY TIME CMD), read from /proc."""
    processes = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").strip().decode(errors="replace")
            uid = os.stat(f"/proc/{pid}").st_uid
        except FileNotFoundError:
            continue  # it exited while we looked
        fields = stat[stat.rindex(")") + 2:].split()
        ppid = int(fields[1])
        cpu_ticks = int(fields[11]) + int(fields[12])
        started = _boot_time() + int(fields[19]) / _CLOCK_TICKS
        elapsed = max(time.time() - started, 1e-9)
        cpu_pct = int(100 * cpu_ticks / _CLOCK_TICKS / elapsed)
        seconds = cpu_ticks // _CLOCK_TICKS
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        processes.append([
            _uid_name(uid), str(pid), str(ppid), str(cpu_pct), time.strftime("%H:%M", time.localtime(started)),
            "?", f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}", cmdline or f"[{name}]",
        ])
    return {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": processes}


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return int(sum(int(x) for x in fields) * 1_000_000_000 // _CLOCK_TICKS)


def stats_json(container_id: str, name: str, stats: CgroupStats, previous: dict[str, Any] | None) -> dict[str, Any]:
    """One `GET /containers/{id}/stats` sample (definitions ContainerStatsResponse)."""
    from datetime import UTC, datetime

    per_cpu = stats.cpu_per_cpu_ns or []
    cpu = {
        "cpu_usage": {"total_usage": stats.cpu_total_ns or 0, "percpu_usage": per_cpu or None,
                      "usage_in_kernelmode": stats.cpu_system_ns or 0, "usage_in_usermode": stats.cpu_user_ns or 0},
        "system_cpu_usage": _system_cpu_ns(),
        "online_cpus": os.cpu_count() or 1,
        "throttling_data": {"periods": stats.throttling_periods or 0,
                            "throttled_periods": stats.throttled_periods or 0,
                            "throttled_time": stats.throttled_time_ns or 0},
    }
    empty_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                 "system_cpu_usage": 0, "online_cpus": os.cpu_count() or 1, "throttling_data": {}}
    limit = stats.memory_limit
    if limit is None or limit >= 1 << 62:
        with open("/proc/meminfo") as f:
            limit = int(f.readline().split()[1]) * 1024
    return {
        "id": container_id,
        "name": "/" + name,
        "read": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "preread": previous["read"] if previous else "0001-01-01T00:00:00Z",
        "pids_stats": {"current": stats.pids_current or 0, **({"limit": stats.pids_limit} if stats.pids_limit else {})},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": d.major, "minor": d.minor, "op": op, "value": value}
            for d in stats.blkio_service_bytes for op, value in (("read", d.read), ("write", d.write))
        ] or None},
        "num_procs": 0,
        "cpu_stats": cpu,
        "precpu_stats": previous["cpu_stats"] if previous else empty_cpu,
        "memory_stats": {"usage": stats.memory_usage or 0, "max_usage": stats.memory_max_usage or 0,
                         "limit": limit, "stats": dict(stats.memory_stat)},
        "networks": {},
        "storage_stats": {},
    }

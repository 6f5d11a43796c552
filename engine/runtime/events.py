"""Container statistics in runc's `events` shape (runc types/events.go: Stats)."""

from __future__ import annotations

from .cgroup_link import open_container_cgroup, require_cgroup
from .errors import InvalidState
from .state import StateStore
from .status import container_status

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def container_stats(store: StateStore, container_id: str) -> dict[str, Any]:
    """{"type": "stats", "id": ..., "data": {cpu, memory, pids, blkio}} like `runc events --stats`."""
    record = store.load(container_id)
    if container_status(store, record) == "stopped":
        raise InvalidState("container not running")
    cgroup = open_container_cgroup(record.cgroup_path, record.id) if record.cgroup_path else None
    stats = require_cgroup(cgroup, "events --stats").stats()
    data = {
        "cpu": {
            "usage": _drop_none({"total": stats.cpu_total_ns, "percpu": stats.cpu_per_cpu_ns or None,
                                 "kernel": stats.cpu_system_ns, "user": stats.cpu_user_ns}),
            "throttling": _drop_none({"periods": stats.throttling_periods,
                                      "throttledPeriods": stats.throttled_periods,
                                      "throttledTime": stats.throttled_time_ns}),
        },
        "memory": _drop_none({
            "usage": _drop_none({"usage": stats.memory_usage, "max": stats.memory_max_usage,
                                 "limit": stats.memory_limit}),
            "cache": stats.memory_cache,
            "raw": dict(stats.memory_stat) or None,
        }),
        "pids": _drop_none({"current": stats.pids_current, "limit": stats.pids_limit}),
        "blkio": {"ioServiceBytesRecursive": [
            {"major": d.major, "minor": d.minor, "op": op, "value": value}
            for d in stats.blkio_service_bytes for op, value in (("Read", d.read), ("Write", d.write))
        ]},
    }
    return {"type": "stats", "id": container_id, "data": data}

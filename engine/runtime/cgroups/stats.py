"""What ``docker stats`` needs from a cgroup, filled from v1 or v2 files.

Fields are None when the host cannot provide them (e.g. no memory controller
on the hierarchy), never a made-up zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BlkioDeviceBytes:
    major: int
    minor: int
    read: int
    write: int


@dataclass
class CgroupStats:
    # cpu (nanoseconds)
    cpu_total_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_per_cpu_ns: list[int] = field(default_factory=list)  # v1 cpuacct only
    throttling_periods: int | None = None
    throttled_periods: int | None = None
    throttled_time_ns: int | None = None
    # memory (bytes)
    memory_usage: int | None = None
    memory_limit: int | None = None  # None: unlimited or unknown
    memory_max_usage: int | None = None
    memory_cache: int | None = None
    memory_rss: int | None = None
    memory_stat: dict[str, int] = field(default_factory=dict)
    # pids
    pids_current: int | None = None
    pids_limit: int | None = None  # None: unlimited or unknown
    # block I/O
    blkio_service_bytes: list[BlkioDeviceBytes] = field(default_factory=list)


def parse_v1_blkio(text: str | None) -> list[BlkioDeviceBytes]:
    """blkio.*io_service_bytes*: lines ``8:0 Read 4096`` ... and a ``Total`` line."""
    per_dev: dict[tuple[int, int], dict[str, int]] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        per_dev.setdefault((major, minor), {})[parts[1].lower()] = int(parts[2])
    return [
        BlkioDeviceBytes(major, minor, ops.get("read", 0), ops.get("write", 0))
        for (major, minor), ops in sorted(per_dev.items())
    ]


def parse_v2_io_stat(text: str | None) -> list[BlkioDeviceBytes]:
    """io.stat: ``8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`` per device."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        out.append(BlkioDeviceBytes(major, minor, int(kv.get("rbytes", 0)), int(kv.get("wbytes", 0))))
    return sorted(out, key=lambda d: (d.major, d.minor))

"""`berth stats`: live resource usage, computed from the stats stream as docker's CLI does.

cli/command/container/stats_helpers.go: CPU % is the container's CPU time
delta over the host's CPU time delta between two samples, times the online
CPUs; memory excludes the page cache (inactive_file); network and block I/O
are sums; one thread per container reads its stream, the main thread redraws
the table every second (`--no-stream`: one sample each, printed once).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any

from engine.cli.context import CLIContext, StatusError
from engine.humanize import human_size

STATS_HEADERS = {
    "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
CLEAR = "\033[2J\033[H"


def cpu_percent(sample: Mapping[str, Any]) -> float:
    """calculateCPUPercentUnix: (container delta / system delta) * online CPUs * 100."""
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
        "total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    if system_delta > 0 and cpu_delta > 0:
        return float(cpu_delta / system_delta * online * 100.0)
    return 0.0


def memory_usage(memory: Mapping[str, Any]) -> float:
    """calculateMemUsageUnixNoCache: usage minus inactive_file (cgroup v2) or total_inactive_file (v1)."""
    usage = float(memory.get("usage") or 0)
    stats = memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in stats and stats[key] < usage:
            return usage - float(stats[key])
    return usage


def _io(sample: Mapping[str, Any]) -> tuple[float, float, float, float]:
    rx = sum(n.get("rx_bytes", 0) for n in (sample.get("networks") or {}).values())
    tx = sum(n.get("tx_bytes", 0) for n in (sample.get("networks") or {}).values())
    read = write = 0
    for entry in (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            write += entry.get("value", 0)
    return rx, tx, read, write


def stats_row(sample: Mapping[str, Any] | None, container: str, container_id: str, name: str,
              trunc: bool = True) -> dict[str, str]:
    """The strings docker's stats context exposes; without a sample (stopped, or not read yet) docker shows
    dashes and no ID."""
    if not sample:
        return {"Container": container, "ID": "", "Name": "--", "CPUPerc": "--", "MemUsage": "-- / --",
                "MemPerc": "--", "NetIO": "--", "BlockIO": "--", "PIDs": "--"}
    shown_id = container_id[:12] if trunc else container_id
    row = {"Container": container, "ID": shown_id, "Name": name.lstrip("/") or "--"}
    memory = sample.get("memory_stats") or {}
    used, limit = memory_usage(memory), float(memory.get("limit") or 0)
    rx, tx, read, write = _io(sample)
    return dict(
        row,
        CPUPerc=f"{cpu_percent(sample):.2f}%",
        MemUsage=f"{human_size(used, binary=True)} / {human_size(limit, binary=True)}",
        MemPerc=f"{used / limit * 100.0 if limit else 0.0:.2f}%",
        NetIO=f"{human_size(rx)} / {human_size(tx)}",
        BlockIO=f"{human_size(read)} / {human_size(write)}",
        PIDs=str(int((sample.get("pids_stats") or {}).get("current") or 0)),
    )


class _Watcher:
    """One container's stats stream, read on its own thread; `latest` is the newest sample."""

    def __init__(self, ctx: CLIContext, container: str, container_id: str, name: str) -> None:
        self.container, self.id, self.name = container, container_id, name
        self.latest: dict[str, Any] | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._ctx = ctx
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from engine.client.errors import ClientError

        try:
            stream = self._ctx.client.stream("GET", f"/containers/{self.id}/stats", {"stream": True})
            try:
                for sample in stream.json_lines():
                    self.latest = sample
                    self.done.set()
            finally:
                stream.close()
        except ClientError as exc:
            self.error = str(exc)
        finally:
            self.latest = None  # the stream ended (the container stopped): docker's dashes from now on
            self.done.set()


def stats(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("stats", "Display a live stream of container(s) resource usage statistics")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    p.add_argument("--no-stream", action="store_true", help="Disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    opts = p.parse_args(args)
    from engine.client.errors import APIError

    named = bool(opts.containers)
    if named:
        targets = []
        for name in opts.containers:
            try:
                info = ctx.client.get(f"/containers/{name}/json")
            except APIError as exc:
                raise StatusError(str(exc), 1) from exc
            targets.append((name, str(info["Id"]), str(info.get("Name") or "")))
    else:
        targets = _listed(ctx, opts.all)
    fmt = opts.format or STATS_TABLE
    trunc = not opts.no_trunc
    if opts.no_stream:
        rows = [stats_row(_one_sample(ctx, cid), name, cid, cname, trunc) for name, cid, cname in targets]
        _print_rows(ctx, fmt, rows)
        return 0
    watchers = {cid: _Watcher(ctx, name, cid, cname) for name, cid, cname in targets}
    try:
        while True:
            if not named:
                listed = _listed(ctx, opts.all)
                for name, cid, cname in listed:
                    if cid not in watchers:
                        watchers[cid] = _Watcher(ctx, name, cid, cname)
                current = {cid for _, cid, _ in listed}
                watchers = {cid: w for cid, w in watchers.items() if cid in current}
            for watcher in watchers.values():
                watcher.done.wait(2.0)  # a new stream's first sample: a short, bounded wait
            ctx.out.write(CLEAR)
            _print_rows(ctx, fmt, [stats_row(w.latest, w.container, w.id, w.name, trunc) for w in watchers.values()])
            ctx.out.flush()
            threading.Event().wait(1.0)
    except KeyboardInterrupt:
        return 0


def _listed(ctx: CLIContext, show_all: bool) -> list[tuple[str, str, str]]:
    entries = ctx.client.get("/containers/json", {"all": show_all or None})
    out = []
    for entry in entries:
        name = ((entry.get("Names") or ["/"])[0]).lstrip("/")
        out.append((str(entry["Id"])[:12], str(entry["Id"]), name))
    return out


def _one_sample(ctx: CLIContext, container_id: str) -> dict[str, Any] | None:
    """GET stats?stream=false: the engine samples twice (about a second apart) so CPU % has a delta."""
    from engine.client.errors import APIError

    try:
        info = ctx.client.get(f"/containers/{container_id}/json")
        if not (info.get("State") or {}).get("Running"):
            return None  # a stopped container: docker shows zeros/dashes, there is nothing to sample
        sample = ctx.client.get(f"/containers/{container_id}/stats", {"stream": False})
    except APIError as exc:
        sys.stderr.write(f"{exc}\n")
        return None
    return sample if isinstance(sample, dict) else None


def _print_rows(ctx: CLIContext, fmt: str, rows: list[dict[str, str]]) -> None:
    from engine.cli.formatter import write_list

    write_list(ctx, fmt, rows, STATS_HEADERS)

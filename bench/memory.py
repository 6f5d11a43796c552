"""Memory: idle berthd vs dockerd + containerd, and the per-container supervisor of each.

- Idle: VmRSS (/proc/<pid>/status) of berthd (and any helper it keeps) vs the
  sum of dockerd and its containerd, just started and after `docker load busybox`.
- Per container: with N `sleep` containers running in each engine, RSS and PSS
  (/proc/<pid>/smaps_rollup) of each containerd-shim-runc-v2, of each Berth
  per-container shim (a second berthd with `"shim-mode": "per-container"`),
  and of Berth's shared shim host (the default: one process for up to
  shim-host-max-containers containers): its total, total/N, and the marginal
  PSS per added container, (PSS at 2N - PSS at N) / N.
  PSS shares a page among the processes that map it, so N identical shims
  show what a container really adds; RSS counts shared pages in full.
  The containers' own `sleep` processes are the same in all and not counted.

Run: .venv/bin/python -m bench.memory [--containers 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.engines import Engine, berthd_engine, both_engines
from tests.fixtures.dockerd import pids_whose_cmdline_contains

SETTLE_S = 2.0  # let start-up garbage be collected / freed before reading
MIB = 1024 * 1024


@dataclass
class Mem:
    rss: int
    pss: int


def read_mem(pid: int) -> Mem:
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1]) * 1024
    return Mem(rss, pss)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def shim_pids(engine: Engine) -> list[int]:
    """The per-container supervisors: Berth's `engine.containers.shim`, containerd's `containerd-shim*`."""
    mine = pids_whose_cmdline_contains(str(engine.workdir).encode())
    if engine.label.startswith("berthd"):
        # Exec'd: `-m engine.containers.shim`; forked by the shim zygote: titled `berth-shim ...`.
        return [p for p in mine if "engine.containers.shim " in _cmdline(p) or _cmdline(p).startswith("berth-shim ")]
    return [p for p in mine if _comm(p).startswith("containerd-shim")]


def host_pids(engine: Engine) -> list[int]:
    """Berth's shared shim hosts (forked by the zygote: titled `berth-shim-host`; exec'd: `-m ...shim_host`)."""
    mine = pids_whose_cmdline_contains(str(engine.workdir).encode())
    titled = [p for p in mine
              if _cmdline(p).startswith("berth-shim-host") or "engine.containers.shim_host" in _cmdline(p)]
    return [p for p in titled if _parent(p) not in titled]  # not a container init that has not exec'd yet


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2:].split()[1])


def daemon_pids(engine: Engine) -> dict[str, int]:
    """The engine's long-lived processes, by name: the daemon plus helpers that are not shims or containers."""
    pids = {engine.label: engine.daemon_pid}
    shims = set(shim_pids(engine)) | set(host_pids(engine))
    for pid in pids_whose_cmdline_contains(str(engine.workdir).encode()):
        if pid in shims or pid == engine.daemon_pid:
            continue
        name = _comm(pid)
        if name in ("containerd", "python", "python3") or "engine." in _cmdline(pid):
            pids[f"{name}[{pid}]"] = pid
    return pids


def _mib(n: float) -> str:
    return f"{n / MIB:7.1f} MiB"


def print_daemons(title: str, engines: tuple[Engine, ...]) -> dict[str, int]:
    """Prints each engine's daemon RSS (with its parts); returns the totals by engine."""
    print(title)
    totals = {}
    for engine in engines:
        parts = {name: read_mem(pid) for name, pid in daemon_pids(engine).items()}
        detail = " + ".join(f"{name} {parts[name].rss / MIB:.1f}" for name in parts)
        total = sum(m.rss for m in parts.values())
        print(f"  {engine.label:<8} RSS {_mib(total)}  ({detail} MiB)")
        totals[engine.label] = total
    print(flush=True)
    return totals


def _run_sleepers(engine: Engine, count: int) -> None:
    for _ in range(count):
        engine.docker("run", "-d", "--network", "none", "busybox", "sleep", "600")


def _host_total(engine: Engine) -> Mem:
    mems = [read_mem(p) for p in host_pids(engine)]
    return Mem(sum(m.rss for m in mems), sum(m.pss for m in mems))


def print_per_process_shims(count: int, engines: tuple[Engine, ...]) -> dict[str, float]:
    """Each per-container supervisor process: mean [min-max] RSS and PSS; returns the mean PSS by engine."""
    print(f"Per-container supervisor processes ({count} `sleep` containers in each engine; mean [min-max])")
    print(f"  {'':<26} {'RSS':>26}   {'PSS':>26}")
    per_shim: dict[str, float] = {}
    for engine in engines:
        pids = shim_pids(engine)
        name = "berth shim (per-container)" if engine.label.startswith("berthd") else "containerd-shim-runc-v2"
        if len(pids) != count:
            print(f"  note: found {len(pids)} {name} processes, expected {count}")
        if not pids:
            continue
        mems = [read_mem(p) for p in pids]
        rss = [m.rss for m in mems]
        pss = [m.pss for m in mems]
        per_shim[engine.label] = statistics.mean(pss)
        print(f"  {name:<26} {_mib(statistics.mean(rss))} [{min(rss) / MIB:.1f}-{max(rss) / MIB:.1f}]"
              f"   {_mib(statistics.mean(pss))} [{min(pss) / MIB:.1f}-{max(pss) / MIB:.1f}]")
    return per_shim


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=10)
    opts = parser.parse_args()
    count = max(1, min(opts.containers, 50))  # bounded (2N run in the shared host)
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-") as tmp, both_engines(Path(tmp)) as (berth, docker), \
            berthd_engine(Path(tmp) / "pc", f"{Path(tmp).name}-pc", {"shim-mode": "per-container"}) as per_container:
        per_container.label = "berthd-pc"
        engines = (berth, docker)
        time.sleep(SETTLE_S)
        idle = print_daemons("Idle daemons (busybox loaded, no containers): VmRSS", engines)
        for engine in (berth, docker, per_container):
            _run_sleepers(engine, count)
        time.sleep(SETTLE_S)
        busy = print_daemons(f"Daemons with {count} running containers: VmRSS", engines)
        for label in busy:
            print(f"  {label} grew {(busy[label] - idle[label]) / count / MIB:.2f} MiB per container")
        print()
        per_shim = print_per_process_shims(count, (per_container, docker))
        reference = per_shim.get("dockerd")
        hosts_n, at_n = len(host_pids(berth)), _host_total(berth)
        _run_sleepers(berth, count)
        time.sleep(SETTLE_S)
        hosts_2n, at_2n = len(host_pids(berth)), _host_total(berth)
        marginal = (at_2n.pss - at_n.pss) / count
        print()
        print("Berth's shared shim host (the default; PSS of all host processes together)")
        print(f"  {count:>3} containers: {hosts_n} host(s), RSS {_mib(at_n.rss)}, PSS {_mib(at_n.pss)}, "
              f"PSS/container {_mib(at_n.pss / count)}")
        print(f"  {2 * count:>3} containers: {hosts_2n} host(s), RSS {_mib(at_2n.rss)}, PSS {_mib(at_2n.pss)}, "
              f"PSS/container {_mib(at_2n.pss / (2 * count))}")
        print(f"  marginal PSS per added container ({count} -> {2 * count}): {marginal / 1024:.0f} KiB")
        # What bounding the blast radius costs: each host pays its fixed part once (shim-host-max-containers).
        fixed = max(at_n.pss - count * marginal, 0) / max(hosts_n, 1)
        print(f"  fixed PSS per host ~{_mib(fixed)}: a new host every K containers adds "
              + ", ".join(f"K={k} {fixed / k / 1024:.0f} KiB" for k in (8, 16, 32, 64)) + " per container")
        if reference:
            print()
            print(f"Ratios to containerd-shim-runc-v2's {reference / MIB:.2f} MiB PSS per container")
            if "berthd-pc" in per_shim:
                print(f"  berth per-container shim:            {per_shim['berthd-pc'] / reference:.2f}x")
            print(f"  shared host, PSS/container at {count:>3}:  {at_n.pss / count / reference:.2f}x")
            print(f"  shared host, PSS/container at {2 * count:>3}:  {at_2n.pss / (2 * count) / reference:.2f}x")
            print(f"  shared host, marginal per container:  {marginal / reference:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

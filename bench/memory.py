"""Memory: idle berthd vs dockerd + containerd, and the per-container supervisor of each.

- Idle: VmRSS (/proc/<pid>/status) of berthd (and any helper it keeps) vs the
  sum of dockerd and its containerd, just started and after `docker load busybox`.
- Per container: with N `sleep` containers running in each engine, RSS and PSS
  (/proc/<pid>/smaps_rollup) of each Berth shim vs each containerd-shim-runc-v2.
  PSS shares a page among the processes that map it, so N identical shims
  show what a container really adds; RSS counts shared pages in full.
  The containers' own `sleep` processes are the same in both and not counted.

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

from bench.engines import Engine, both_engines
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
    if engine.label == "berthd":
        # Exec'd: `-m engine.containers.shim`; forked by the shim zygote: titled `berth-shim ...`.
        return [p for p in mine if "engine.containers.shim" in _cmdline(p) or _cmdline(p).startswith("berth-shim")]
    return [p for p in mine if _comm(p).startswith("containerd-shim")]


def daemon_pids(engine: Engine) -> dict[str, int]:
    """The engine's long-lived processes, by name: the daemon plus helpers that are not shims or containers."""
    pids = {engine.label: engine.daemon_pid}
    shims = set(shim_pids(engine))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=10)
    opts = parser.parse_args()
    count = max(1, min(opts.containers, 100))  # bounded
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-") as tmp, both_engines(Path(tmp)) as (berth, docker):
        engines = (berth, docker)
        time.sleep(SETTLE_S)
        idle = print_daemons("Idle daemons (busybox loaded, no containers): VmRSS", engines)
        for engine in engines:
            for _ in range(count):
                engine.docker("run", "-d", "--network", "none", "busybox", "sleep", "600")
        time.sleep(SETTLE_S)
        busy = print_daemons(f"Daemons with {count} running containers: VmRSS", engines)
        for label in busy:
            print(f"  {label} grew {(busy[label] - idle[label]) / count / MIB:.2f} MiB per container")
        print()
        print(f"Per-container supervisor ({count} `sleep` containers in each engine; mean [min-max] per process)")
        print(f"  {'':<22} {'RSS':>26}   {'PSS':>26}")
        per_shim: dict[str, float] = {}
        for engine in engines:
            pids = shim_pids(engine)
            name = "berth shim (python)" if engine.label == "berthd" else "containerd-shim-runc-v2"
            if len(pids) != count:
                print(f"  note: found {len(pids)} {name} processes, expected {count}")
            if not pids:
                continue
            mems = [read_mem(p) for p in pids]
            rss = [m.rss for m in mems]
            pss = [m.pss for m in mems]
            per_shim[engine.label] = statistics.mean(pss)
            print(f"  {name:<22} {_mib(statistics.mean(rss))} [{min(rss) / MIB:.1f}-{max(rss) / MIB:.1f}]"
                  f"   {_mib(statistics.mean(pss))} [{min(pss) / MIB:.1f}-{max(pss) / MIB:.1f}]")
        if len(per_shim) == 2:
            print(f"  PSS ratio berth shim / containerd-shim: {per_shim['berthd'] / per_shim['dockerd']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

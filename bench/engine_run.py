"""berthd vs Debian's dockerd through the same real `docker` CLI, in one run.

Scenarios (calls take turns between the engines so machine noise hits both):
- `docker run --rm --network none busybox true`
- `docker ps` with 0 containers, then with 50 running `sleep` containers in each engine (issue #5: "`docker ps`
  with 50 running containers")
- `docker run -d --network none busybox sleep 600`, then `docker stop -t 0` of it (each timed; rm untimed)

Ratios are berthd/dockerd (< 1.00: berthd is faster).

Run: .venv/bin/python -m bench.engine_run [--runs 30] [--running 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.engines import Engine, both_engines
from bench.timing import Sample, report, time_interleaved

SLEEP = ["--network", "none", "busybox", "sleep", "600"]


def _table(title: str, samples: list[Sample]) -> None:
    print(report(title, samples, "dockerd"))
    print(flush=True)


def bench_run_rm(engines: tuple[Engine, ...], runs: int) -> None:
    calls = {e.label: (lambda e=e: e.docker_quiet("run", "--rm", "--network", "none", "busybox", "true"))
             for e in engines}
    _table(f"docker run --rm --network none busybox true ({runs} runs, 3 warm-up)",
           time_interleaved(calls, runs, warmup=3))


def bench_ps(engines: tuple[Engine, ...], runs: int, running: int) -> None:
    calls = {e.label: (lambda e=e: e.docker_quiet("ps")) for e in engines}
    _table(f"docker ps, 0 containers ({runs} runs)", time_interleaved(calls, runs))
    for engine in engines:
        for _ in range(running):
            engine.docker("run", "-d", *SLEEP)
        listed = len(engine.docker("ps", "-q").stdout.split())
        if listed != running:
            print(f"note: {engine.label} lists {listed} running containers, expected {running}")
    _table(f"docker ps, {running} running sleep containers ({runs} runs)", time_interleaved(calls, runs))
    for engine in engines:
        engine.remove_all_containers()


def bench_run_d_stop(engines: tuple[Engine, ...], runs: int) -> None:
    run_times: dict[str, list[float]] = {e.label: [] for e in engines}
    stop_times: dict[str, list[float]] = {e.label: [] for e in engines}
    for round_no in range(runs + 2):  # the first two rounds warm up
        order = engines if round_no % 2 == 0 else tuple(reversed(engines))
        for engine in order:
            start = time.perf_counter()
            container_id = engine.docker("run", "-d", *SLEEP).stdout.decode().strip()
            started = time.perf_counter()
            engine.docker("stop", "-t", "0", container_id)
            stopped = time.perf_counter()
            engine.docker("rm", container_id)
            if round_no >= 2:
                run_times[engine.label].append(started - start)
                stop_times[engine.label].append(stopped - started)
    _table(f"docker run -d --network none busybox sleep 600 ({runs} runs)",
           [Sample(label, t) for label, t in run_times.items()])
    _table(f"docker stop -t 0 (of that container) ({runs} runs)",
           [Sample(label, t) for label, t in stop_times.items()])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--running", type=int, default=50, help="containers running for the second `docker ps`")
    opts = parser.parse_args()
    runs = max(1, min(opts.runs, 500))  # bounded loops
    running = max(0, min(opts.running, 100))
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-") as tmp, both_engines(Path(tmp)) as (berth, docker):
        engines = (berth, docker)
        print(f"docker CLI: {berth.docker('--version').stdout.decode().strip()}; "
              f"dockerd {docker.docker('version', '-f', '{{.Server.Version}}').stdout.decode().strip()}; "
              f"berthd {berth.docker('version', '-f', '{{.Server.Version}}').stdout.decode().strip()}\n")
        scenarios: list[Callable[[], None]] = [
            lambda: bench_run_rm(engines, runs),
            lambda: bench_ps(engines, runs, running),
            lambda: bench_run_d_stop(engines, runs),
        ]
        for scenario in scenarios:
            try:
                scenario()
            except Exception as exc:  # a failing scenario is reported and skipped, the others still run
                print(f"skipped a scenario: {type(exc).__name__}: {exc}\n", flush=True)
                for engine in engines:
                    engine.remove_all_containers()
    return 0


if __name__ == "__main__":
    sys.exit(main())

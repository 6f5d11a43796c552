"""Pull and push of debian:bookworm-slim with local registries: berthd vs Debian's dockerd,
through the same real `docker` CLI, in one run.

- cold pull: the image is removed from the engine before each run (untimed: its blobs go
  too), then `docker pull REGISTRY/library/debian:bookworm-slim` is timed; the same for a
  ~200 MB image (debian plus a 120 MB layer of random bytes, built by dockerd first);
- push: the image is tagged into a new repository of a second, empty registry each run, so
  every blob is uploaded (no "Layer already exists", no cross-repository mount), then
  `docker push` is timed.  dockerd re-compresses layers on upload; Berth sends the
  compressed blobs it pulled.

Rounds alternate which engine goes first.  Ratios are berthd/dockerd (< 1.00: berthd is faster).

Run: .venv/bin/python -m bench.registry_pull_push [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.engines import Engine, both_engines
from bench.timing import Sample, report
from tests.fixtures.registry import running_registry, seed

IMAGE = "library/debian:bookworm-slim"
BIG_LAYER_BYTES = 120_000_000  # random, so it stays this big compressed: ~150 MB to download


def _build_big_image(builder: Engine, base: str, name: str) -> None:
    """debian plus one large layer, built by dockerd (classic builder, no network) and pushed to the source."""
    builder.docker("pull", base)
    dockerfile = f"FROM {base}\nRUN head -c {BIG_LAYER_BYTES} /dev/urandom > /big.bin\n"
    built = subprocess.run(["docker", "build", "--network", "none", "-t", name, "-"],
                           env=dict(builder.env, DOCKER_BUILDKIT="0"),
                           input=dockerfile.encode(), capture_output=True, timeout=600)
    if built.returncode != 0:
        raise RuntimeError(f"docker build of {name} failed: {built.stderr.decode(errors='replace')}")
    builder.docker("push", name)


def _timed_rounds(engines: tuple[Engine, ...], runs: int, step: Callable[[Engine, int], Callable[[], None]]
                  ) -> list[Sample]:
    """`step(engine, round)` prepares (untimed) and returns the call to time."""
    times: dict[str, list[float]] = {e.label: [] for e in engines}
    for round_no in range(runs):
        order = engines if round_no % 2 == 0 else tuple(reversed(engines))
        for engine in order:
            timed = step(engine, round_no)
            start = time.perf_counter()
            timed()
            times[engine.label].append(time.perf_counter() - start)
    return [Sample(label, t) for label, t in times.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    runs = max(1, min(opts.runs, 20))  # bounded loops
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-") as tmp, \
            both_engines(Path(tmp), berthd_config={}) as (berth, docker), \
            running_registry(Path(tmp) / "source") as source:
        seed(source)
        engines = (berth, docker)
        image = f"{source.host}/{IMAGE}"
        engine_versions = "; ".join(
            f"{e.label} {e.docker('version', '-f', '{{.Server.Version}}').stdout.decode().strip()}" for e in engines)
        print(f"docker CLI: {berth.docker('--version').stdout.decode().strip()}; {engine_versions}\n")
        def cold_pull(engine: Engine, round_no: int) -> Callable[[], None]:
            engine.docker("rmi", "-f", image, check=False)
            return lambda: engine.docker_quiet("pull", image)

        def cold_pull_and_run(engine: Engine, round_no: int) -> Callable[[], None]:
            engine.docker("rmi", "-f", image, check=False)

            def go() -> None:
                engine.docker_quiet("pull", image)
                engine.docker_quiet("run", "--rm", "--network", "none", image, "true")
            return go

        targets = contextlib.ExitStack()

        def push(engine: Engine, round_no: int) -> Callable[[], None]:
            # A fresh registry each time: nothing to skip, nothing to mount from.
            registry = targets.enter_context(running_registry(Path(tmp) / f"target-{engine.label}-{round_no}"))
            name = f"{registry.host}/bench/debian:bookworm-slim"
            engine.docker("tag", image, name)
            return lambda: engine.docker_quiet("push", name)

        big = f"{source.host}/bench/big:latest"
        _build_big_image(docker, image, big)

        def cold_pull_big(engine: Engine, round_no: int) -> Callable[[], None]:
            engine.docker("rmi", "-f", big, check=False)
            engine.docker("rmi", "-f", image, check=False)  # its base layer too: nothing "Already exists"
            return lambda: engine.docker_quiet("pull", big)

        big_pulls = _timed_rounds(engines, runs, cold_pull_big)
        big_size = int(berth.docker("image", "inspect", "-f", "{{.Size}}", big).stdout.decode().strip())
        print(report(f"cold docker pull of debian:bookworm-slim + a {BIG_LAYER_BYTES // 1_000_000} MB layer "
                     f"({big_size / 1e6:.0f} MB unpacked) ({runs} runs)", big_pulls, "dockerd"))
        print(flush=True)
        for engine in engines:
            engine.docker("rmi", "-f", big, check=False)
        pulls = _timed_rounds(engines, runs, cold_pull)
        size = berth.docker("image", "inspect", "-f", "{{.Size}}", image).stdout.decode().strip()
        print(report(f"cold docker pull {IMAGE} ({int(size) / 1e6:.0f} MB unpacked) from a local registry "
                     f"({runs} runs; Berth unpacks layers at first use, dockerd during the pull)", pulls, "dockerd"))
        print(flush=True)
        print(report(f"cold docker pull, then docker run --rm --network none ... true ({runs} runs)",
                     _timed_rounds(engines, runs, cold_pull_and_run), "dockerd"))
        print(flush=True)
        with targets:
            pushes = _timed_rounds(engines, runs, push)
        print(report(f"docker push {IMAGE} to an empty local registry ({runs} runs)", pushes, "dockerd"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

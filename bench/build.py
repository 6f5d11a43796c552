"""Classic builds side by side: berthd vs Debian's dockerd, through the same `DOCKER_BUILDKIT=0 docker build`.

The Dockerfile has 8 steps after FROM busybox (2 COPY, 3 RUN, ENV, WORKDIR,
CMD); RUN uses `--network none` (the reference dockerd runs without a
bridge).  "cold" is `--no-cache` (the base image is already loaded, as in
MACHINE-NOTES' measurement); "cached" repeats the identical build, every
step a cache hit.  Runs take turns between the engines.

Run: .venv/bin/python -m bench.build [--runs 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.engines import Engine, both_engines
from bench.timing import report, time_interleaved

DOCKERFILE = """\
FROM busybox
COPY a.txt /app/a.txt
COPY dir/ /app/dir/
RUN cat /app/a.txt > /app/b.txt
RUN mkdir -p /out && for i in 1 2 3 4 5; do echo $i >> /out/n; done
RUN wc -l /out/n > /out/count
ENV MODE=bench
WORKDIR /app
CMD ["cat", "/out/count"]
"""


def make_context(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "a.txt").write_text("a\n" * 1000)
    (root / "dir").mkdir(exist_ok=True)
    for i in range(20):
        (root / "dir" / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    opts = parser.parse_args()
    runs = max(1, min(opts.runs, 200))
    with tempfile.TemporaryDirectory(prefix="berth-bench-build-") as tmp, both_engines(Path(tmp)) as engines:
        context = str(make_context(Path(tmp) / "context"))

        def build(engine: Engine, *extra: str) -> None:
            engine.env["DOCKER_BUILDKIT"] = "0"
            engine.docker_quiet("build", "--network", "none", *extra, "-t", "bench-build:latest", context)

        for engine in engines:  # the result must be right before it is timed
            build(engine)
            out = engine.docker("run", "--rm", "--network", "none", "bench-build:latest").stdout.decode()
            if out.split()[0] != "5":
                print(f"{engine.label} built a wrong image: {out!r}")
                return 1
        cold = {e.label: (lambda e=e: build(e, "--no-cache")) for e in engines}
        print(report(f"docker build --no-cache, 8 steps after FROM busybox ({runs} runs)",
                     time_interleaved(cold, runs, warmup=1), "dockerd"))
        print(flush=True)
        cached = {e.label: (lambda e=e: build(e)) for e in engines}
        print(report(f"docker build, every step cached ({runs} runs)",
                     time_interleaved(cached, runs, warmup=1), "dockerd"))
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`docker run --rm busybox true` on one berthd through each OCI runtime it can drive, side by side.

The same berthd (its default runtime, Berth's library) runs the container with
`--runtime berth` and `--runtime runc` (crun 1.8 cannot run Berth's specs on
this host), interleaved; medians and the ratio to Berth's own runtime are printed.

Run: .venv/bin/python -m bench.engine_runtimes [--runs 30]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.engines import bench_run_tag, berthd_engine
from bench.timing import time_interleaved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    opts = parser.parse_args()
    if shutil.which("runc") is None:
        print("runc is not installed (installers/linux/host-deps.sh test)", file=sys.stderr)
        return 1
    with bench_run_tag() as tag, tempfile.TemporaryDirectory(prefix=f"{tag}-rt-") as tmp, \
            berthd_engine(Path(tmp) / "berthd", tag) as engine:
        runtimes = ["berth", "runc"]
        calls = {f"docker run --rm --runtime {name} busybox true":
                 (lambda name=name: engine.docker_quiet("run", "--rm", "--runtime", name, "busybox", "true"))
                 for name in runtimes}
        samples = time_interleaved(calls, opts.runs)
    base = samples[0].median
    print(f"{'':48} {'median':>9} {'p90':>9} {'ratio':>6}   (runs={opts.runs}, interleaved)")
    for sample in samples:
        print(f"{sample.label:48} {sample.median * 1000:7.1f}ms {sample.p90 * 1000:7.1f}ms "
              f"{sample.median / base:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`berth` vs the Go `docker` CLI against the same berthd: `version` (and more as commands land).

Run: .venv/bin/python -m bench.cli_commands [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.timing import Sample, report, time_command

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-") as tmp:
        sock = Path(tmp) / "berth.sock"
        daemon = subprocess.Popen(
            [sys.executable, "-m", "engine.daemon.main", "-H", f"unix://{sock}", "--data-root", f"{tmp}/data",
             "--exec-root", f"{tmp}/run"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(400):
                if sock.exists():
                    break
                time.sleep(0.025)
            env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
            berth = str(REPO / ".venv" / "bin" / "berth")
            for args in (["version"], ["info"]):
                samples = [
                    Sample("docker " + " ".join(args), time_command(["docker", *args], opts.runs, env)),
                    Sample("berth " + " ".join(args), time_command([berth, *args], opts.runs, env)),
                ]
                print(report(f"CLI wall time: {' '.join(args)} ({opts.runs} runs)", samples,
                             "docker " + " ".join(args)))
                print()
        finally:
            daemon.terminate()
            daemon.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

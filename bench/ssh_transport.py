"""`berth -H ssh://...` vs the docker CLI's `DOCKER_HOST=ssh://...` against the same berthd through one sshd.

A private loopback sshd (tests/fixtures/sshd.py) whose sessions have berth and
docker on PATH pointed at a test berthd (its own netns): both clients log in,
open exec channels running `berth system dial-stdio` (berth's client) or
`docker system dial-stdio` (docker's, through OpenSSH's ssh) and talk HTTP over
them.  Each row is a whole command: SSH handshake, auth, remote process start(s)
and the requests.  The unix-socket rows are the floor.

Run: .venv/bin/python -m bench.ssh_transport [--runs 15]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from bench.engines import BUSYBOX_ARCHIVE, bench_run_tag
from bench.timing import report, run_quiet, time_interleaved
from tests.api.conftest import running_berthd
from tests.fixtures.sshd import running_sshd

REPO = Path(__file__).resolve().parents[1]
BERTH = str(REPO / ".venv" / "bin" / "berth")
SCENARIOS = (["version"], ["ps"], ["run", "--rm", "--network", "none", "busybox", "true"])


def _quiet(argv: list[str], env: dict[str, str]) -> Callable[[], None]:
    return lambda: run_quiet(argv, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    with bench_run_tag() as tag, running_berthd(tag) as daemon, \
            running_sshd(tag, daemon.socket, Path(BERTH).parent) as sshd:
        run_quiet(["docker", "load", "-i", str(BUSYBOX_ARCHIVE)], daemon.env())
        local = dict(daemon.env())
        remote = sshd.env(daemon.env())
        for args in SCENARIOS:
            label = " ".join(args)
            samples = time_interleaved({
                f"docker {label} (unix)": _quiet(["docker", *args], local),
                f"berth {label} (unix)": _quiet([BERTH, *args], local),
                f"docker {label} (ssh)": _quiet(["docker", *args], dict(remote, DOCKER_HOST=sshd.url)),
                f"berth {label} (ssh)": _quiet([BERTH, "-H", sshd.url, *args], remote),
            }, opts.runs)
            print(report(f"CLI wall time over ssh:// vs unix://: {label} ({opts.runs} runs)", samples,
                         f"docker {label} (ssh)"))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

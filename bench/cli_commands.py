"""`berth` vs the Go `docker` CLI against the same berthd: version, info, ps, images, inspect, logs, run.

The daemon (no default bridge, no iptables: it changes nothing on the host)
gets the busybox seed image, one exited container with a few log lines and a
few created (never started) ones, so `ps -a`, `images`, `inspect` and `logs`
print real output.  Our modules are
byte-compiled first: an installed package ships .pyc files, and a tree run with
PYTHONDONTWRITEBYTECODE would otherwise re-compile every module on every run.

Run: .venv/bin/python -m bench.cli_commands [--runs 30]
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.timing import report, run_quiet, time_interleaved

REPO = Path(__file__).resolve().parents[1]
CGROUP_PARENT = f"berth-bench-cli-{os.getpid()}"  # its containers' cgroups: removed when the bench ends
SCENARIOS = (["version"], ["info"], ["ps"], ["ps", "-a"], ["images"],
             # The everyday forms beyond the plain lists (issue #8): filters, formats, inspect, logs.
             ["ps", "-q"], ["ps", "-a", "-n", "5"], ["ps", "-a", "--filter", "status=exited"],
             ["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"], ["ps", "-a", "--format", "{{json .}}"],
             ["images", "-q"], ["images", "--format", "{{.Repository}}:{{.Tag}}"],
             ["inspect", "bench0"], ["inspect", "--format", "{{.State.Status}}", "bench0"], ["logs", "bench0"],
             # The third form: a whole container run (create, attach, start, wait, remove).
             ["run", "--rm", "--network", "none", "busybox", "true"])


def _quiet(argv: list[str], env: dict[str, str]) -> Callable[[], object]:
    return lambda: run_quiet(argv, env)


def _seed(env: dict[str, str]) -> bool:
    archive = REPO / "build" / "images" / "busybox.tar"
    if not archive.exists():
        print(f"({archive} missing: `make images`; ps/images timed over an empty engine, no inspect/logs)")
        return False
    subprocess.run(["docker", "load", "-q", "-i", str(archive)], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["docker", "run", "--network", "none", "--name", "bench0", "busybox", "sh", "-c",
                    "seq 20; echo done >&2"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for n in (1, 2):
        subprocess.run(["docker", "create", "--network", "none", "--name", f"bench{n}", "busybox", "true"], env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    opts = parser.parse_args()
    for package in ("engine/cli", "engine/client"):
        compileall.compile_dir(REPO / package, quiet=1)
    compileall.compile_dir(REPO / "engine", maxlevels=0, quiet=1)
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-") as tmp:
        sock = Path(tmp) / "berth.sock"
        daemon = subprocess.Popen(
            [sys.executable, "-m", "engine.daemon.main", "-H", f"unix://{sock}", "--data-root", f"{tmp}/data",
             "--exec-root", f"{tmp}/run", "--bridge=none", "--iptables=false", "--cgroup-parent", CGROUP_PARENT],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=f"{tmp}/docker-config")
        try:
            for _ in range(400):
                if sock.exists():
                    break
                time.sleep(0.025)
            seeded = _seed(env)
            berth = str(REPO / ".venv" / "bin" / "berth")
            for args in (a for a in SCENARIOS if seeded or not {"bench0", "busybox"} & set(a)):
                # Taking turns (time_interleaved), like the other benches: load from other jobs on a
                # shared machine then weighs on both rows alike instead of on whichever ran second.
                samples = time_interleaved({
                    "docker " + " ".join(args): _quiet(["docker", *args], env),
                    "berth " + " ".join(args): _quiet([berth, *args], env),
                }, opts.runs)
                print(report(f"CLI wall time: {' '.join(args)} ({opts.runs} runs)", samples,
                             "docker " + " ".join(args)))
                print()
        finally:
            subprocess.run(["docker", "rm", "-f", "bench0", "bench1", "bench2"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            daemon.terminate()
            daemon.wait(10)
            _remove_cgroups(CGROUP_PARENT)
    return 0


def _remove_cgroups(name: str) -> None:
    """The (empty) cgroup directories named `name` that berthd made in each hierarchy, deepest first."""
    for top in Path("/sys/fs/cgroup").rglob(name):
        for path, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
            try:
                os.rmdir(path)
            except OSError as exc:
                print(f"(cgroup {path} left: {exc.strerror})")


if __name__ == "__main__":
    sys.exit(main())

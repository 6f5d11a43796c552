"""`make run`'s last step, end to end: berthd starts, the seed images load, hello-world runs via `berth`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.api.conftest import daemon_netns, remove_netns
from tests.fixtures.cleanup import register_process
from tests.fixtures.registry import seed_images_dir

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.needs_root


def test_quickstart_runs_hello_world_and_reuses_the_engine(run_tag: str) -> None:
    if not all((seed_images_dir() / n).exists() for n in ("busybox.tar", "hello-world.tar")):
        pytest.skip("seed images missing: run `make images`")
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-qs-") as tmp:
        env = dict(os.environ, XDG_DATA_HOME=f"{tmp}/data", XDG_RUNTIME_DIR=f"{tmp}/run",
                   BERTHD_EXTRA_ARGS=f"--cgroup-parent {run_tag}")
        os.makedirs(f"{tmp}/run")
        pidfile = Path(tmp, "run", "berth", "berthd.pid")
        # The berthd `make run` starts gets its bridge and rules in a test netns, not the host's.
        netns = daemon_netns(Path(tmp))
        quickstart = ["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-m", "installers.linux.quickstart"]
        try:
            first = subprocess.run(quickstart, cwd=REPO, env=env,
                                   capture_output=True, text=True, timeout=600)
            if pidfile.exists():
                register_process(int(pidfile.read_text()))
            assert first.returncode == 0, first.stdout + first.stderr
            assert "Hello from Berth!" in first.stdout
            assert first.stdout.rstrip().endswith("make run: ok — berthd is up and hello-world ran")
            again = subprocess.run(quickstart, cwd=REPO, env=env,
                                   capture_output=True, text=True, timeout=600)
            assert again.returncode == 0, again.stdout + again.stderr
            assert "berthd is already running" in again.stdout
        finally:
            if pidfile.exists():
                pid = int(pidfile.read_text())
                os.kill(pid, signal.SIGTERM)
                for _ in range(200):
                    if not os.path.exists(f"/proc/{pid}"):
                        break
                    time.sleep(0.05)
            remove_netns(netns)

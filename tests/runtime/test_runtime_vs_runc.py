"""The same bundle under `runc run` and `berth-runtime run` gives the same observable container."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import Bundle, RuntimeCLI

RUNC = shutil.which("runc")
pytestmark = [pytest.mark.needs_root, pytest.mark.skipif(RUNC is None, reason="runc is not installed")]

# Everything here is decided by the runtime from config.json, not by the host.
PROBE = "; ".join([
    "hostname",
    "echo pid=$$",
    "id",
    "pwd",
    "umask",
    "ulimit -n",
    "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status",
    "ls -1 /dev | tr '\\n' ' '; echo",
    "ls -l /dev/ptmx /dev/fd /dev/stdin | sed 's/.* \\(\\/dev\\/\\)/\\1/'",
    "stat -c '%n %A %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty",
    "wc -c < /proc/keys",
    "ls -A /sys/firmware | wc -l",
    "touch /x 2>&1 | sed 's/.*: //'",
    "echo 1 2>&1 > /proc/sys/kernel/domainname | sed 's/.*: //'",
    "awk '$5 !~ /^\\/sys\\/fs\\/cgroup\\// {print $5, $6}' /proc/self/mountinfo | sed 's/,relatime//'",
    "echo done",
])


def run_runc(bundle: Bundle, container_id: str, state_root: Path) -> subprocess.CompletedProcess[bytes]:
    assert RUNC is not None
    try:
        return subprocess.run([RUNC, "--root", str(state_root), "run", "--bundle", str(bundle.path), container_id],
                              capture_output=True, timeout=60)
    finally:
        subprocess.run([RUNC, "--root", str(state_root), "delete", "--force", container_id], capture_output=True)


def test_same_bundle_same_container_under_runc(bundle: Bundle, runtime: RuntimeCLI, tmp_path: Path) -> None:
    bundle.spec["hostname"] = "xcheck"
    bundle.spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path),
                                  "options": ["rbind", "ro", "nosuid", "nodev"]})
    bundle.set_process(["sh", "-c", PROBE], user={"uid": 1000, "gid": 1000, "additionalGids": [5]},
                       cwd="/tmp", rlimits=[{"type": "RLIMIT_NOFILE", "soft": 333, "hard": 444}])
    berth = runtime("run", "--bundle", str(bundle.path), runtime.new_id("xcheck"), check=False)
    runc = run_runc(bundle, f"{runtime.tag}-runc", tmp_path / "runc-state")
    assert runc.returncode == 0, runc.stderr.decode()
    assert berth.returncode == 0, berth.stderr.decode()
    assert berth.stdout.decode().endswith("done\n")
    assert berth.stdout.decode().splitlines() == runc.stdout.decode().splitlines()


def test_same_exit_status_as_runc(bundle: Bundle, runtime: RuntimeCLI, tmp_path: Path) -> None:
    bundle.set_process(["sh", "-c", "exit 42"])
    berth = runtime("run", "--bundle", str(bundle.path), runtime.new_id("xcheck"), check=False)
    runc = run_runc(bundle, f"{runtime.tag}-runc-exit", tmp_path / "runc-state")
    assert berth.returncode == runc.returncode == 42

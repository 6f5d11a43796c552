"""tests/fixtures/dockerd.py: the reference daemon starts isolated and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures import capabilities
from tests.fixtures.cleanup import read_mountinfo
from tests.fixtures.dockerd import docker_load, running_dockerd
from tests.installers.conftest import SeedBuilds

pytestmark = [pytest.mark.needs_dockerd, pytest.mark.slow]


def _host_network_state() -> dict[str, object]:
    """The host settings a default dockerd would change."""
    rules = ""
    if shutil.which("iptables-save"):
        dumped = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
        rules = "\n".join(line for line in dumped.splitlines() if "DOCKER" in line.upper())
    return {
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
        "docker0": Path("/sys/class/net/docker0").exists(),
        "docker_rules": rules,
    }


def _cmdline_mentions(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_reference_dockerd_leaves_host_and_workdir_clean(
    seed_builds: SeedBuilds, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not on PATH")
    if not capabilities.dockerd().available:
        pytest.skip(capabilities.dockerd().missing)
    before = _host_network_state()
    # Short: containerd's sockets live below it (108-byte unix path limit).
    workdir = tmp_path_factory.mktemp("dockerd")
    with running_dockerd(workdir) as daemon:
        assert daemon.ping()
        docker_load(daemon, seed_builds.archive("busybox"))
        # A container still running at shutdown: dockerd must stop it and unmount its rootfs.
        daemon.docker("run", "-d", "--network", "none", "--stop-timeout", "1", "busybox", "sleep", "600")
        assert any(m.mountpoint.startswith(str(workdir)) for m in read_mountinfo())
        pid = daemon.pid
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not workdir.exists()
    assert [m.mountpoint for m in read_mountinfo() if m.mountpoint.startswith(str(workdir))] == []
    assert [p for p in _cmdline_mentions(str(workdir)) if p != os.getpid()] == []
    assert _host_network_state() == before

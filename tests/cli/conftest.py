"""One berthd per test module, driven by `berth` and by the real docker CLI side by side.

Containers are removed (force) before the daemon stops: their shims outlive
berthd by design, and a module must not leave processes behind.  The daemon's
container cgroups live under this run's tag so the session sweep finds them.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.conftest import REPO, RunningDaemon, start_berthd, stop

BERTH = str(REPO / ".venv" / "bin" / "berth")
SEED_IMAGES = REPO / "build" / "images"


@dataclass
class Tools:
    daemon: RunningDaemon

    def run(self, tool: str, *args: str, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([tool, *args], env=self.daemon.env(), input=stdin, capture_output=True, text=True,
                              timeout=timeout, stdin=None if stdin is not None else subprocess.DEVNULL)

    def berth(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(BERTH, *args, stdin=stdin)

    def docker(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("docker", *args, stdin=stdin)

    def ok(self, tool: str, *args: str) -> str:
        """stdout of a command that must succeed."""
        out = self.run(BERTH if tool == "berth" else tool, *args)
        assert out.returncode == 0, f"{tool} {' '.join(args)}: {out.stderr}"
        return out.stdout

    def remove_all_containers(self) -> None:
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", *ids)


def seed_archive(name: str) -> Path:
    path = SEED_IMAGES / f"{name}.tar"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make images` first")
    return path


@contextlib.contextmanager
def running_tools(root: Path, run_tag: str, host_netns: bool = False) -> Iterator[Tools]:
    """A berthd for CLI tests; its containers are removed before it stops."""
    running = start_berthd(root, "--cgroup-parent", run_tag, host_netns=host_netns)
    tools = Tools(running)
    try:
        yield tools
    finally:
        try:
            tools.remove_all_containers()
        finally:
            stop(running)


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory, run_tag: str) -> Iterator[Tools]:
    with running_tools(tmp_path_factory.mktemp("cli"), run_tag) as tools:
        yield tools


@pytest.fixture(scope="module")
def busybox(tools: Tools) -> str:
    """busybox:latest loaded into the module's daemon (with the docker CLI: berth's load is tested elsewhere)."""
    tools.ok("docker", "load", "-q", "-i", str(seed_archive("busybox")))
    return "busybox"

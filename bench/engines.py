"""berthd and Debian's dockerd side by side, each on a private socket with busybox loaded.

Both are driven by the same real `docker` CLI (only DOCKER_HOST differs).
dockerd comes from tests/fixtures/dockerd.py (no iptables, no bridge, no
ip_forward: containers need `--network none`); berthd from tests/api/conftest.py,
with a cgroup parent named after the bench's temp dir so cleanup removes
only this run's cgroups.

Those fixtures register their processes with the test cleanup guard, which
needs a run tag: `bench_run_tag()` takes one and holds its lease, so a test
session sweeping at the same time sees a live run and leaves our daemons alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.cgroup_cleanup import remove_cgroups
from bench.timing import run_quiet
from engine.snapshots.mounts import unmount_all_under
from tests.api.conftest import start_berthd, stop
from tests.fixtures.cleanup import TAG_ENV, RunLease, unregister_process
from tests.fixtures.dockerd import pids_whose_cmdline_contains, running_dockerd

REPO = Path(__file__).resolve().parents[1]
BUSYBOX_ARCHIVE = REPO / "build" / "images" / "busybox.tar"
_CLI_TIMEOUT_S = 120


@dataclass
class Engine:
    label: str
    env: dict[str, str]
    daemon_pid: int
    workdir: Path  # appears on the command line of every process the engine starts

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, timeout=_CLI_TIMEOUT_S,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise RuntimeError(f"[{self.label}] docker {' '.join(args)} exited {result.returncode}: "
                               f"{result.stderr.decode(errors='replace').strip()}")
        return result

    def docker_quiet(self, *args: str) -> None:
        """For timed calls: output to /dev/null (no pipe reading in the measurement), exit status checked."""
        run_quiet(["docker", *args], self.env, _CLI_TIMEOUT_S)  # exact wait (see timing.run_quiet)

    def remove_all_containers(self) -> None:
        ids = self.docker("ps", "-aq").stdout.decode().split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)


@contextlib.contextmanager
def bench_run_tag() -> Iterator[str]:
    tag = f"berthtest-{secrets.token_hex(4)}"
    previous = os.environ.get(TAG_ENV)
    os.environ[TAG_ENV] = tag
    lease = RunLease(tag)
    try:
        yield tag
    finally:
        lease.release()
        if previous is None:
            os.environ.pop(TAG_ENV, None)
        else:
            os.environ[TAG_ENV] = previous


@contextlib.contextmanager
def berthd_engine(root: Path, cgroup_parent: str, config: dict[str, object] | None = None) -> Iterator[Engine]:
    """`config` (a daemon.json) also puts berthd where it reaches registries on the host's loopback."""
    root.mkdir(parents=True, exist_ok=True)
    if config is None:
        daemon = start_berthd(root, "--cgroup-parent", cgroup_parent)
    else:
        from tests.api.test_push import start_registry_berthd

        daemon = start_registry_berthd(root, cgroup_parent, config)
    engine = Engine("berthd", daemon.env(), daemon.proc.pid, root)
    try:
        engine.docker("load", "-i", str(BUSYBOX_ARCHIVE))
        yield engine
    finally:
        try:
            engine.remove_all_containers()
        finally:
            stop(daemon)
            unregister_process(daemon.proc.pid)
            # Shims live in their own session and outlive berthd by design: end ours by pid.
            for pid in pids_whose_cmdline_contains(str(root).encode()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            unmount_all_under(root)
            for leak in remove_cgroups(cgroup_parent):
                print(f"warning: cgroup left behind by berthd: {leak}")


@contextlib.contextmanager
def dockerd_engine(workdir: Path) -> Iterator[Engine]:
    with running_dockerd(workdir) as daemon:
        engine = Engine("dockerd", daemon.env(), daemon.pid, workdir)
        try:
            engine.docker("load", "-i", str(BUSYBOX_ARCHIVE))
            yield engine
        finally:
            engine.remove_all_containers()


@contextlib.contextmanager
def both_engines(tmp: Path, berthd_config: dict[str, object] | None = None) -> Iterator[tuple[Engine, Engine]]:
    """(berthd, dockerd), both ready with busybox:latest; everything stopped and removed on exit."""
    with bench_run_tag(), berthd_engine(tmp / "berthd", tmp.name, berthd_config) as berth, \
            dockerd_engine(tmp / "d") as docker:
        yield berth, docker

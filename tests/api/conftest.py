from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningDaemon:
    proc: subprocess.Popen[bytes]
    root: Path
    socket: Path
    log: Path
    netns: str | None = None  # the run-tagged netns berthd runs in (None: the host's, no bridge, no iptables)

    def in_netns(self, *argv: str) -> list[str]:
        """`argv` run in the daemon's network namespace (only that: mounts and the rest stay the host's)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv] if self.netns else list(argv)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return dict(os.environ, DOCKER_HOST=self.docker_host, DOCKER_CONFIG=str(self.root / "docker-config"))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for_socket(proc: subprocess.Popen[bytes], path: Path, log: Path) -> None:
    # Readiness is "the socket accepts a connection", polled; a dead daemon fails at once.
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"berthd exited {proc.returncode}: {log.read_text(errors='replace')}")
        if path.exists():
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                    return
                except OSError:
                    pass
        time.sleep(0.025)
    raise RuntimeError(f"berthd did not listen on {path}: {log.read_text(errors='replace')}")


def daemon_netns(root: Path) -> str:
    """The run-tagged netns for the berthd of `root`: made once, the same again after a restart.

    Test daemons never touch the host's network: their bridges, veths, iptables rules and
    published ports live in this namespace.  It is entered with `nsenter --net` only (not
    `ip netns exec`, which also makes a new mount namespace): the unix socket, data root and
    mounts stay shared with the host, so the docker CLI works from outside."""
    from tests.fixtures.cleanup import current_tag, resource_name

    name = resource_name(current_tag(), "n" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8])
    if not (Path("/run/netns") / name).exists():
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True, timeout=30)
    return name


def remove_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def start_berthd(root: Path, *extra: str, host_netns: bool = False) -> RunningDaemon:
    """A berthd for `root`, in its own netns; `host_netns=True` (for TCP listeners the host must reach):
    in the host's netns with `--bridge=none --iptables=false`, so it changes nothing there."""
    sock = root / "run" / "berth.sock"
    log = root / "berthd.log"
    netns = None if host_netns else daemon_netns(root)
    cmd = [
        *(["nsenter", f"--net=/run/netns/{netns}"] if netns else []),
        sys.executable, "-m", "engine.daemon.main",
        "-H", f"unix://{sock}",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "run"),
        "--pidfile", str(root / "run" / "berthd.pid"),
        *(["--bridge=none", "--iptables=false"] if host_netns else []),
        *extra,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        from tests.fixtures.cleanup import register_process

        register_process(proc.pid)
    except Exception:
        # Not under the test session's guard (a bench script without a run tag): nobody
        # would ever stop this daemon, so do not leave it running.
        proc.kill()
        proc.wait()
        raise
    wait_for_socket(proc, sock, log)
    return RunningDaemon(proc, root, sock, log, netns)


def stop(daemon: RunningDaemon, keep_netns: bool = False) -> None:
    """Stop berthd and (unless `keep_netns`, for a restart) delete its netns with everything in it."""
    if daemon.proc.poll() is None:
        daemon.proc.terminate()
        try:
            daemon.proc.wait(10)
        except subprocess.TimeoutExpired:
            daemon.proc.kill()
            daemon.proc.wait()
    if daemon.netns and not keep_netns:
        remove_netns(daemon.netns)


@contextlib.contextmanager
def running_berthd(run_tag: str, *extra: str, config: dict[str, Any] | None = None) -> Iterator[RunningDaemon]:
    """A berthd in a short, run-tagged temp dir (unix socket paths must stay under 108 bytes).

    Its containers' cgroups go under the run tag, so the cleanup guard can sweep them.
    """
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-d-") as tmp:
        root = Path(tmp)
        args = ["--cgroup-parent", run_tag, *extra]
        if config is not None:
            (root / "daemon.json").write_text(json.dumps(config))
            args += ["--config-file", str(root / "daemon.json")]
        daemon = start_berthd(root, *args)
        try:
            yield daemon
        finally:
            stop(daemon)


@pytest.fixture
def berthd(run_tag: str) -> Iterator[RunningDaemon]:
    with running_berthd(run_tag) as daemon:
        yield daemon


@pytest.fixture
def reloadable_berthd(run_tag: str) -> Iterator[RunningDaemon]:
    """A berthd with a daemon.json, so SIGHUP has something to reload (and emits an event)."""
    with running_berthd(run_tag, config={"debug": False}) as daemon:
        yield daemon


def seed_archives(*names: str) -> list[Path]:
    """The seed images' `docker save` archives, or a skip when `make images` has not run."""
    from tests.fixtures.registry import seed_images_dir

    archives = [seed_images_dir() / f"{name}.tar" for name in names]
    if not all(a.exists() for a in archives):
        pytest.skip("seed images missing: run `make images`")
    return archives


def load_images(daemon: RunningDaemon, archives: list[Path]) -> None:
    for archive in archives:
        out = subprocess.run(["docker", "load", "-q", "-i", str(archive)], env=daemon.env(), capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr


def remove_all_containers(daemon: RunningDaemon) -> None:
    ids = subprocess.run(["docker", "ps", "-aq"], env=daemon.env(), capture_output=True, text=True,
                         timeout=60).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], env=daemon.env(), capture_output=True, timeout=120)


@contextlib.contextmanager
def berthd_with_images(run_tag: str, *images: str) -> Iterator[RunningDaemon]:
    """running_berthd with seed images loaded; its containers are removed at the end."""
    archives = seed_archives(*images)
    with running_berthd(run_tag) as daemon:
        try:
            load_images(daemon, archives)
            yield daemon
        finally:
            remove_all_containers(daemon)


class RestartableBerthd:
    """A berthd whose data and exec roots outlive it, so a test can stop it and start it again."""

    def __init__(self, root: Path, run_tag: str, config: dict[str, Any] | None = None) -> None:
        self.root = root
        self.args: tuple[str, ...] = ("--cgroup-parent", run_tag)
        if config is not None:
            (root / "daemon.json").write_text(json.dumps(config))
            self.args += ("--config-file", str(root / "daemon.json"))
        self.daemon = start_berthd(root, *self.args)

    def halt(self, sig: int) -> None:
        """SIGTERM (a clean shutdown) or SIGKILL (a crash); waits until the daemon is gone."""
        self.daemon.proc.send_signal(sig)
        self.daemon.proc.wait(30)

    def start(self) -> RunningDaemon:
        self.daemon = start_berthd(self.root, *self.args)
        return self.daemon


@contextlib.contextmanager
def restartable_berthd(run_tag: str, *images: str, config: dict[str, Any] | None = None
                       ) -> Iterator[RestartableBerthd]:
    archives = seed_archives(*images)
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-r-") as tmp:
        handle = RestartableBerthd(Path(tmp), run_tag, config)
        try:
            load_images(handle.daemon, archives)
            yield handle
        finally:
            if handle.daemon.proc.poll() is not None:
                handle.start()  # a test that failed while it was down: its containers still need removing
            remove_all_containers(handle.daemon)
            stop(handle.daemon)

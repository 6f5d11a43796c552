"""Shims forked from berthd's pre-imported zygote: shared pages, their own titles, independent lives.

These are per-container shims (daemon.json `"shim-mode": "per-container"`, and berthd's fallback
when no shared shim host can start); tests/api/test_shim_host.py covers the shared host."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.api.conftest import RunningDaemon, restartable_berthd
from tests.api.test_containers import _wait_for, docker_cli

pytestmark = pytest.mark.needs_root

PER_CONTAINER = {"shim-mode": "per-container"}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _processes_under(root: Path, marker: bytes) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and marker in _cmdline(int(p.name)) and str(root).encode() in _cmdline(int(p.name))]


def _shim_of(daemon: RunningDaemon, name: str) -> int:
    container_id = docker_cli(daemon, "inspect", "-f", "{{.Id}}", name).stdout.strip()
    [pid] = [p for p in _processes_under(daemon.root, b"berth-shim") if container_id.encode() in _cmdline(p)]
    return pid


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def _kib(pid: int, *fields: str) -> int:
    """The sum of /proc/<pid>/smaps_rollup's `fields` (Private_Dirty, Shared_Clean...)."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    return sum(int(line.split()[1]) for line in lines if line.split(":")[0] in fields)


def _private_kib(pid: int) -> int:
    return _kib(pid, "Private_Clean", "Private_Dirty")


def _shared_kib(pid: int) -> int:
    return _kib(pid, "Shared_Clean", "Shared_Dirty")


def test_shims_are_forked_from_the_zygote_and_outlive_it(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox", config=PER_CONTAINER) as berthd:
        daemon = berthd.daemon
        for name in ("one", "two"):
            assert docker_cli(daemon, "run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
        [zygote] = _processes_under(daemon.root, b"engine.containers.zygote")
        shims = [_shim_of(daemon, n) for n in ("one", "two")]
        # Titled for the container they serve, parented by neither berthd nor the zygote (double fork).
        assert all(_parent(s) not in (daemon.proc.pid, zygote) for s in shims)
        # Pages of the pre-imported interpreter are shared with the zygote, not copied into each shim.
        assert all(_shared_kib(s) > _private_kib(s) for s in shims), [(_shared_kib(s), _private_kib(s)) for s in shims]
        berthd.halt(signal.SIGTERM)
        _wait_for(lambda: not Path(f"/proc/{zygote}").exists(), "the zygote to follow berthd out")
        assert all(Path(f"/proc/{s}").exists() for s in shims)
        daemon = berthd.start()
        assert docker_cli(daemon, "exec", "one", "echo", "served").stdout == "served\n"
        assert docker_cli(daemon, "stop", "-t", "0", "one", "two").returncode == 0
        _wait_for(lambda: not any(Path(f"/proc/{s}").exists() for s in shims), "the shims to end with their runs")
        # A new zygote serves the new daemon.
        assert docker_cli(daemon, "start", "one").returncode == 0
        assert _shim_of(daemon, "one") not in shims


def test_a_killed_zygote_is_replaced(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox", config=PER_CONTAINER) as berthd:
        daemon = berthd.daemon
        assert docker_cli(daemon, "run", "--rm", "busybox", "true").returncode == 0  # the zygote is up
        [zygote] = _processes_under(daemon.root, b"engine.containers.zygote")
        os.kill(zygote, signal.SIGKILL)
        _wait_for(lambda: not Path(f"/proc/{zygote}").exists(), "the zygote to die")
        out = docker_cli(daemon, "run", "--rm", "busybox", "echo", "still forking")
        assert out.stdout == "still forking\n", out.stderr
        [replacement] = _processes_under(daemon.root, b"engine.containers.zygote")
        assert replacement != zygote


def test_a_killed_shim_ends_its_run_and_the_restart_policy_applies(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox", config=PER_CONTAINER) as berthd:
        daemon = berthd.daemon
        for name, policy in (("lone", "no"), ("phoenix", "always")):
            assert docker_cli(daemon, "run", "-d", "--name", name, "--restart", policy, "busybox",
                              "sleep", "300").returncode == 0
        inits = {n: int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", n).stdout) for n in ("lone", "phoenix")}
        for name in inits:
            os.kill(_shim_of(daemon, name), signal.SIGKILL)

        def state(name: str) -> str:
            return docker_cli(daemon, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.strip()

        # Like containerd with a dead shim: the run is over (its processes are ended), exit status unknown.
        _wait_for(lambda: state("lone") == "exited 255", "the shimless run to be recorded")
        assert "supervisor disappeared" in docker_cli(daemon, "inspect", "-f", "{{.State.Error}}", "lone").stdout
        _wait_for(lambda: not Path(f"/proc/{inits['lone']}").exists(), "the shimless container's process to end")
        _wait_for(lambda: docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", "phoenix").stdout.strip()
                  not in ("0", str(inits["phoenix"])) and state("phoenix").startswith("running"),
                  "the always-restart container to run again")
        assert docker_cli(daemon, "exec", "phoenix", "true").returncode == 0


def test_without_a_zygote_shims_are_execd(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox", config=PER_CONTAINER) as berthd:
        berthd.halt(signal.SIGTERM)
        sock = berthd.root / "run" / "shim-zygote.sock"
        _wait_for(lambda: not _processes_under(berthd.root, b"engine.containers.zygote"), "the zygote to exit")
        sock.unlink(missing_ok=True)
        sock.mkdir()  # the zygote cannot bind its socket: it fails to start
        daemon = berthd.start()
        out = docker_cli(daemon, "run", "-d", "--name", "plain", "busybox", "sleep", "300")
        assert out.returncode == 0, out.stderr
        container_id = out.stdout.strip()
        execd = [p for p in _processes_under(daemon.root, b"engine.containers.shim") if container_id.encode()
                 in _cmdline(p)]
        assert len(execd) == 1 and not _processes_under(daemon.root, b"engine.containers.zygote")
        assert "shim zygote unavailable" in daemon.log_text()
        assert docker_cli(daemon, "exec", "plain", "echo", "ok").stdout == "ok\n"

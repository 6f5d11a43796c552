"""--runtime / daemon.json runtimes: containers driven through Debian's runc instead of Berth's runtime library."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.api.conftest import (
    RunningDaemon,
    load_images,
    remove_all_containers,
    restartable_berthd,
    running_berthd,
    seed_archives,
)
from tests.api.test_containers import _drive_pty, _wait_for, docker_cli

pytestmark = [pytest.mark.needs_root,
              pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed (host-deps.sh test)")]


@pytest.fixture(scope="module")
def runc_default(run_tag: str) -> Iterator[RunningDaemon]:
    """A berthd whose default runtime is runc (`--runtime runc`, found on PATH)."""
    archives = seed_archives("busybox")
    with running_berthd(run_tag, "--runtime", "runc") as daemon:
        try:
            load_images(daemon, archives)
            yield daemon
        finally:
            remove_all_containers(daemon)


def _runtime_of(daemon: RunningDaemon, name: str) -> str:
    return docker_cli(daemon, "inspect", "-f", "{{.HostConfig.Runtime}}", name).stdout.strip()


def _runc_state(daemon: RunningDaemon, runtime: str, container_id: str) -> dict[str, object]:
    """What runc itself says about the container, under the root berthd gave it."""
    root = daemon.root / "run" / "runtimes" / runtime
    out = subprocess.run(["runc", "--root", str(root), "state", container_id], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    state: dict[str, object] = json.loads(out.stdout)
    return state


def test_info_lists_the_runtimes_and_the_default(runc_default: RunningDaemon) -> None:
    info = json.loads(docker_cli(runc_default, "info", "--format", "{{json .}}").stdout)
    assert info["DefaultRuntime"] == "runc"
    assert set(info["Runtimes"]) >= {"berth", "runc"}
    assert info["Runtimes"]["runc"]["path"] == shutil.which("runc")
    from tests.cli.conftest import BERTH

    text = subprocess.run([BERTH, "info"], env=runc_default.env(), capture_output=True, text=True,
                          timeout=60).stdout
    assert "Default Runtime: runc" in text and "Runtimes: berth " in text and " runc" in text


def test_run_rm_echo_through_runc(runc_default: RunningDaemon) -> None:
    out = docker_cli(runc_default, "run", "--rm", "busybox", "sh", "-c", "echo hi; echo err >&2; exit 3")
    assert (out.returncode, out.stdout) == (3, "hi\n"), out.stderr
    assert "err\n" in out.stderr


def test_missing_command_is_the_users_error(runc_default: RunningDaemon) -> None:
    out = docker_cli(runc_default, "run", "--rm", "busybox", "nosuchcmd")
    assert out.returncode == 127, out.stderr
    assert "executable file not found" in out.stderr
    docker_cli(runc_default, "run", "-d", "--name", "rc-missing", "busybox", "sleep", "300")
    try:
        missing = docker_cli(runc_default, "exec", "rc-missing", "nosuchcmd")
        assert missing.returncode == 127
        assert "executable file not found" in missing.stdout + missing.stderr
    finally:
        docker_cli(runc_default, "rm", "-f", "rc-missing")


def test_oom_kill_is_reported_from_runcs_cgroup(runc_default: RunningDaemon) -> None:
    out = docker_cli(runc_default, "run", "--name", "hog", "--memory", "16m", "--memory-swap", "16m", "busybox",
                     "sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived")
    try:
        assert out.returncode == 137, (out.stdout, out.stderr)
        assert docker_cli(runc_default, "inspect", "-f", "{{.State.OOMKilled}}", "hog").stdout.strip() == "true"
    finally:
        docker_cli(runc_default, "rm", "-f", "hog")


def test_detached_exec_logs_pause_stats_stop(runc_default: RunningDaemon) -> None:
    d = runc_default
    out = docker_cli(d, "run", "-d", "--name", "rc1", "--memory", "64m", "busybox", "sh", "-c",
                     "echo started; trap 'echo bye; exit 7' TERM; while true; do sleep 0.1; done")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    try:
        assert _runtime_of(d, "rc1") == "runc"
        state = _runc_state(d, "runc", cid)  # runc made it, and knows it as running
        assert state["status"] == "running"
        assert state["pid"] == int(docker_cli(d, "inspect", "-f", "{{.State.Pid}}", "rc1").stdout)
        ex = docker_cli(d, "exec", "rc1", "sh", "-c", "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 4")
        assert ex.returncode == 4 and ex.stdout.startswith("in-exec\nsh -c echo started"), ex.stderr
        assert docker_cli(d, "exec", "-i", "rc1", "cat", input="piped\n").stdout == "piped\n"
        assert docker_cli(d, "exec", "-u", "nobody", "-w", "/tmp", "rc1", "sh", "-c",
                          "id -u; pwd").stdout == "65534\n/tmp\n"
        screen, code = _drive_pty(["docker", "exec", "-it", "rc1", "sh"], d.env(), b"tty; exit 6\n")
        assert code == 6 and "/dev/pts/" in screen, screen
        _wait_for(lambda: "started" in docker_cli(d, "logs", "rc1").stdout, "the container's first output")
        stats = json.loads(docker_cli(d, "stats", "--no-stream", "--format", "{{json .}}", "rc1").stdout)
        assert stats["MemUsage"].endswith("/ 64MiB")  # the cgroup runc made, read by berthd
        assert docker_cli(d, "update", "--memory", "128m", "rc1").returncode == 0
        stats = json.loads(docker_cli(d, "stats", "--no-stream", "--format", "{{json .}}", "rc1").stdout)
        assert stats["MemUsage"].endswith("/ 128MiB")  # runc update changed it in place
        top = docker_cli(d, "top", "rc1")
        assert top.returncode == 0 and "while true" in top.stdout, top.stderr
        assert docker_cli(d, "pause", "rc1").returncode == 0
        assert _runc_state(d, "runc", cid)["status"] == "paused"
        assert docker_cli(d, "inspect", "-f", "{{.State.Status}}", "rc1").stdout.strip() == "paused"
        assert docker_cli(d, "unpause", "rc1").returncode == 0
        assert _runc_state(d, "runc", cid)["status"] == "running"
        assert docker_cli(d, "stop", "rc1").returncode == 0
        assert docker_cli(d, "inspect", "-f", "{{.State.ExitCode}}", "rc1").stdout.strip() == "7"
        assert "bye" in docker_cli(d, "logs", "rc1").stdout
        # The run's runc state is gone with it.
        gone = subprocess.run(["runc", "--root", str(d.root / "run" / "runtimes" / "runc"), "state", cid],
                              capture_output=True, text=True, timeout=30)
        assert gone.returncode != 0
    finally:
        docker_cli(d, "rm", "-f", "rc1")


def test_run_it_through_a_pty(runc_default: RunningDaemon) -> None:
    screen, code = _drive_pty(["docker", "run", "-it", "--rm", "busybox", "sh"], runc_default.env(),
                              b"echo $((6*7)); tty; exit 5\n", rows=33, cols=99)
    assert code == 5, screen
    lines = [line.strip() for line in screen.splitlines()]
    assert "42" in lines  # the typed arithmetic ran in the container's shell
    assert "/dev/pts/0" in lines  # its stdio is the pty runc made and sent back over --console-socket


def test_per_container_runtime_on_a_berth_default_daemon(run_tag: str) -> None:
    archives = seed_archives("busybox")
    runc = shutil.which("runc")
    assert runc is not None
    with running_berthd(run_tag, config={"runtimes": {"myrunc": {"path": runc, "runtimeArgs": ["--log-format",
                                                                                               "json"]}}}) as d:
        try:
            load_images(d, archives)
            info = json.loads(docker_cli(d, "info", "--format", "{{json .}}").stdout)
            assert info["DefaultRuntime"] == "berth"
            assert info["Runtimes"]["myrunc"] == {"path": runc, "runtimeArgs": ["--log-format", "json"]}
            out = docker_cli(d, "run", "--rm", "--runtime", "myrunc", "busybox", "echo", "hi")
            assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
            docker_cli(d, "create", "--name", "plain", "busybox", "true")
            docker_cli(d, "create", "--name", "viarunc", "--runtime", "myrunc", "busybox", "true")
            assert (_runtime_of(d, "plain"), _runtime_of(d, "viarunc")) == ("berth", "myrunc")
            bad = docker_cli(d, "run", "--rm", "--runtime", "nosuch", "busybox", "true")
            assert bad.returncode != 0
            assert "unknown or invalid runtime name: nosuch" in bad.stderr
            import docker

            client = docker.DockerClient(base_url=d.docker_host)
            with pytest.raises(docker.errors.APIError) as raised:
                client.containers.create("busybox", "true", runtime="nosuch")
            assert raised.value.status_code == 400
        finally:
            remove_all_containers(d)


def test_unknown_default_runtime_is_refused_at_start(run_tag: str) -> None:
    with pytest.raises(RuntimeError) as raised, running_berthd(run_tag, "--runtime", "nosuch"):
        pass
    assert "default-runtime: unknown runtime 'nosuch'" in str(raised.value)


def test_runc_container_survives_a_berthd_kill(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox", config={"default-runtime": "runc"}) as berthd:
        d = berthd.daemon
        out = docker_cli(d, "run", "-d", "--name", "survivor", "busybox", "sh", "-c",
                         "while true; do echo tick; sleep 0.2; done")
        assert out.returncode == 0, out.stderr
        pid = int(docker_cli(d, "inspect", "-f", "{{.State.Pid}}", "survivor").stdout)
        berthd.halt(signal.SIGKILL)
        assert os.path.exists(f"/proc/{pid}")
        d = berthd.start()
        assert docker_cli(d, "inspect", "-f", "{{.State.Status}} {{.HostConfig.Runtime}}",
                          "survivor").stdout.strip() == "running runc"
        assert docker_cli(d, "exec", "survivor", "echo", "still managed").stdout == "still managed\n"
        assert docker_cli(d, "pause", "survivor").returncode == 0
        assert docker_cli(d, "unpause", "survivor").returncode == 0
        assert docker_cli(d, "stop", "-t", "1", "survivor").returncode == 0
        assert docker_cli(d, "inspect", "-f", "{{.State.Status}}", "survivor").stdout.strip() == "exited"
        _wait_for(lambda: not os.path.exists(f"/proc/{pid}"), "the container's init to be gone")


def test_sighup_reloads_runtimes(run_tag: str) -> None:
    runc = shutil.which("runc")
    archives = seed_archives("busybox")
    with running_berthd(run_tag, config={"debug": False}) as d:
        try:
            load_images(d, archives)
            assert "late" in docker_cli(d, "run", "--rm", "--runtime", "late", "busybox", "true").stderr
            (d.root / "daemon.json").write_text(json.dumps({"runtimes": {"late": {"path": runc}}}))
            d.proc.send_signal(signal.SIGHUP)

            def listed() -> bool:
                info = json.loads(docker_cli(d, "info", "--format", "{{json .}}").stdout)
                return "late" in info["Runtimes"]

            _wait_for(listed, "the reloaded runtimes in /info")
            out = docker_cli(d, "run", "--rm", "--runtime", "late", "busybox", "echo", "reloaded")
            assert (out.returncode, out.stdout) == (0, "reloaded\n"), out.stderr
            # A broken entry keeps the old set (and the daemon up).
            (d.root / "daemon.json").write_text(json.dumps({"runtimes": {"late": {"path": "/nonexistent/rt"}}}))
            d.proc.send_signal(signal.SIGHUP)
            _wait_for(lambda: "SIGHUP: keeping the old configuration" in d.log_text(), "the refused reload")
            assert listed()
        finally:
            remove_all_containers(d)


@pytest.mark.skipif(shutil.which("crun") is None, reason="crun not installed")
def test_an_external_runtimes_own_error_reaches_the_client(runc_default: RunningDaemon) -> None:
    """crun 1.8 on this host refuses (hybrid cgroups; Berth's spec says ociVersion 1.2.0, which it does not
    know): its own message, from its --log, is the start error, and the container is left created."""
    d = runc_default
    out = docker_cli(d, "run", "--name", "viacrun", "--runtime", "crun", "busybox", "true")
    assert out.returncode != 0
    assert "failed to create task for container: " in out.stderr
    assert "crun create exited with" not in out.stderr  # crun's words, not a bare exit status
    state = docker_cli(d, "inspect", "-f", "{{.State.Status}} {{.HostConfig.Runtime}}", "viacrun").stdout.split()
    assert state == ["created", "crun"]
    assert docker_cli(d, "rm", "viacrun").returncode == 0


def test_per_container_shims_drive_runc_too(run_tag: str) -> None:
    archives = seed_archives("busybox")
    with running_berthd(run_tag, config={"shim-mode": "per-container", "default-runtime": "runc"}) as d:
        try:
            load_images(d, archives)
            out = docker_cli(d, "run", "--rm", "busybox", "sh", "-c", "echo hi; exit 2")
            assert (out.returncode, out.stdout) == (2, "hi\n"), out.stderr
            screen, code = _drive_pty(["docker", "run", "-it", "--rm", "busybox", "sh"], d.env(),
                                      b"echo $((6*7)); exit 5\n")
            assert code == 5, screen
            assert "42" in [line.strip() for line in screen.splitlines()]
        finally:
            remove_all_containers(d)

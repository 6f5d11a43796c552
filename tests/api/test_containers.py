"""Containers through berthd, driven by the real docker CLI and docker-py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.api.conftest import RunningDaemon, restartable_berthd, running_berthd
from tests.fixtures.registry import seed_images_dir

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def engine(run_tag: str) -> Iterator[RunningDaemon]:
    archives = [seed_images_dir() / n for n in ("busybox.tar", "hello-world.tar")]
    if not all(a.exists() for a in archives):
        pytest.skip("seed images missing: run `make images`")
    with running_berthd(run_tag) as daemon:
        try:
            for archive in archives:
                out = docker_cli(daemon, "load", "-q", "-i", str(archive))
                assert out.returncode == 0, out.stderr
            yield daemon
        finally:
            docker_cli(daemon, "rm", "-f", *docker_cli(daemon, "ps", "-aq").stdout.split())


def docker_cli(daemon: RunningDaemon, *args: str, input: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True, text=True, input=input,
                          timeout=timeout)


def test_run_rm_hello_world(engine: RunningDaemon) -> None:
    out = docker_cli(engine, "run", "--rm", "hello-world")
    assert out.returncode == 0, out.stderr
    assert "Hello from Berth!" in out.stdout
    assert docker_cli(engine, "ps", "-aq").stdout.strip() == ""  # --rm removed it


def test_run_propagates_output_streams_and_exit_code(engine: RunningDaemon) -> None:
    out = docker_cli(engine, "run", "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert out.returncode == 3
    assert out.stdout == "to-out\n"
    assert "to-err\n" in out.stderr


def test_run_interactive_stdin(engine: RunningDaemon) -> None:
    result = docker_cli(engine, "run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z", input="berth stdin\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "BERTH STDIN\n"


def test_detached_lifecycle(engine: RunningDaemon) -> None:
    cid = docker_cli(engine, "run", "-d", "--name", "lifecycle", "busybox", "sh", "-c",
                     "echo started; trap 'echo got-usr1' USR1; while true; do sleep 0.1; done").stdout.strip()
    assert len(cid) == 64
    try:
        assert docker_cli(engine, "inspect", "-f", "{{.State.Status}}", "lifecycle").stdout.strip() == "running"
        assert "lifecycle" in docker_cli(engine, "ps", "--format", "{{.Names}}").stdout.split()
        assert docker_cli(engine, "kill", "-s", "USR1", "lifecycle").returncode == 0
        for _ in range(100):
            if "got-usr1" in docker_cli(engine, "logs", "lifecycle").stdout:
                break
            time.sleep(0.05)
        assert docker_cli(engine, "logs", "lifecycle").stdout.splitlines()[:2] == ["started", "got-usr1"]
        assert docker_cli(engine, "pause", "lifecycle").returncode == 0
        assert docker_cli(engine, "inspect", "-f", "{{.State.Status}}", "lifecycle").stdout.strip() == "paused"
        assert docker_cli(engine, "unpause", "lifecycle").returncode == 0
        stopped = docker_cli(engine, "stop", "-t", "1", "lifecycle")
        assert stopped.returncode == 0, stopped.stderr
        state = json.loads(docker_cli(engine, "inspect", "-f", "{{json .State}}", "lifecycle").stdout)
        assert state["Status"] == "exited"
        assert state["ExitCode"] == 137  # sh as PID 1 ignores SIGTERM: killed after the timeout, like Docker
        exited = docker_cli(engine, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}").stdout
        assert "lifecycle" in exited.split()
        assert docker_cli(engine, "start", "lifecycle").returncode == 0
        assert docker_cli(engine, "inspect", "-f", "{{.State.Running}}", "lifecycle").stdout.strip() == "true"
        assert docker_cli(engine, "restart", "-t", "0", "lifecycle").returncode == 0
        assert docker_cli(engine, "kill", "lifecycle").returncode == 0
        assert docker_cli(engine, "wait", "lifecycle").stdout.strip() == "137"
    finally:
        assert docker_cli(engine, "rm", "-f", "lifecycle").returncode == 0
    assert docker_cli(engine, "inspect", "lifecycle").returncode == 1


def test_logs_follow_ends_when_the_container_exits(engine: RunningDaemon) -> None:
    docker_cli(engine, "run", "-d", "--name", "follower", "busybox", "sh", "-c",
               "for i in 1 2 3; do echo line $i; sleep 0.2; done")
    try:
        out = docker_cli(engine, "logs", "-f", "follower", timeout=30)
        assert out.stdout == "line 1\nline 2\nline 3\n"
        tail = docker_cli(engine, "logs", "--tail", "1", "follower").stdout
        assert tail == "line 3\n"
    finally:
        docker_cli(engine, "rm", "-f", "follower")


def test_rm_force_removes_a_running_container(engine: RunningDaemon) -> None:
    docker_cli(engine, "run", "-d", "--name", "doomed", "busybox", "sleep", "300")
    refused = docker_cli(engine, "rm", "doomed")
    assert refused.returncode == 1
    assert "container is running" in refused.stderr
    assert docker_cli(engine, "rm", "-f", "doomed").returncode == 0
    assert "doomed" not in docker_cli(engine, "ps", "-a", "--format", "{{.Names}}").stdout.split()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "--type", "container", "nosuchthing"], "No such container: nosuchthing"),
        (["start", "nosuchthing"], "No such container: nosuchthing"),
        (["run", "--name", "bad name", "busybox", "true"], "Invalid container name (bad name)"),
        (["run", "--memory", "1k", "busybox", "true"], "Minimum memory limit allowed is 6MB"),
        (["run", "--cap-add", "FLYING", "busybox", "true"], "unknown capability"),
    ],
)
def test_bad_requests_get_dockers_errors(engine: RunningDaemon, args: list[str], message: str) -> None:
    out = docker_cli(engine, *args)
    assert out.returncode != 0
    assert message in out.stderr
    assert engine.proc.poll() is None


def test_duplicate_name_is_a_conflict(engine: RunningDaemon) -> None:
    docker_cli(engine, "create", "--name", "twin", "busybox", "true")
    try:
        out = docker_cli(engine, "create", "--name", "twin", "busybox", "true")
        assert out.returncode != 0
        assert 'Conflict. The container name "/twin" is already in use' in out.stderr
    finally:
        docker_cli(engine, "rm", "twin")


def test_docker_py_runs_lists_and_removes(engine: RunningDaemon) -> None:
    client = docker.DockerClient(base_url=engine.docker_host, version="auto")
    try:
        assert client.containers.run("busybox", ["echo", "from docker-py"], remove=True) == b"from docker-py\n"
        container = client.containers.run("busybox", ["sleep", "300"], detach=True, name="pyctr")
        assert [c.name for c in client.containers.list()] == ["pyctr"]
        container.stop(timeout=0)
        container.reload()
        assert container.status == "exited"
        container.remove()
        assert {t for i in client.images.list() for t in i.tags} >= {"busybox:latest", "hello-world:latest"}
    finally:
        client.close()


@pytest.mark.parametrize("halt", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_containers_survive_a_daemon_restart(run_tag: str, halt: signal.Signals) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        daemon = berthd.daemon
        docker_cli(daemon, "run", "-d", "--name", "survivor", "busybox", "sh", "-c",
                   "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done")
        docker_cli(daemon, "run", "-d", "--name", "quitter", "busybox", "sh", "-c",
                   "until [ -f /go ]; do sleep 0.05; done; exit 7")
        pid = int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", "survivor").stdout)
        quitter = int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", "quitter").stdout)
        berthd.halt(halt)  # SIGTERM: a clean shutdown; SIGKILL: no chance to clean anything up
        Path(f"/proc/{quitter}/root/go").touch()  # the quitter ends while no daemon is there to see it
        _wait_for(lambda: not os.path.exists(f"/proc/{quitter}"), "the quitter to exit")
        assert os.path.exists(f"/proc/{pid}")  # the survivor outlived its daemon
        daemon = berthd.start()
        assert docker_cli(daemon, "inspect", "-f", "{{.State.Status}}", "survivor").stdout.strip() == "running"
        assert int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", "survivor").stdout) == pid
        quit_state = json.loads(docker_cli(daemon, "inspect", "-f", "{{json .State}}", "quitter").stdout)
        assert (quit_state["Status"], quit_state["ExitCode"]) == ("exited", 7)
        before = docker_cli(daemon, "logs", "survivor").stdout.count("tick")
        _wait_for(lambda: docker_cli(daemon, "logs", "survivor").stdout.count("tick") > before, "logs to continue")
        assert docker_cli(daemon, "exec", "survivor", "echo", "still managed").stdout == "still managed\n"
        assert docker_cli(daemon, "stop", "-t", "0", "survivor").returncode == 0
        assert docker_cli(daemon, "inspect", "-f", "{{.State.Status}}", "survivor").stdout.strip() == "exited"
        assert not os.path.exists(f"/proc/{pid}")


def _drive_pty(argv: list[str], env: dict[str, str], typed: bytes, rows: int = 0, cols: int = 0) -> tuple[str, int]:
    """Run `argv` on a real pty, type `typed` once the program is up, return (screen text, exit code)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    if rows:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    output = b""
    sent = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        if not sent and b"# " in output:  # the shell's prompt: it reads input now
            os.write(fd, typed)
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return output.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_exec_runs_in_the_container(engine: RunningDaemon) -> None:
    docker_cli(engine, "run", "-d", "--name", "execbox", "busybox", "sleep", "300")
    try:
        out = docker_cli(engine, "exec", "execbox", "sh", "-c", "echo in-exec; echo err >&2; exit 4")
        assert (out.returncode, out.stdout, out.stderr) == (4, "in-exec\n", "err\n")
        assert docker_cli(engine, "exec", "-i", "execbox", "cat", input="piped\n").stdout == "piped\n"
        assert docker_cli(engine, "exec", "-u", "nobody", "execbox", "id", "-u").stdout == "65534\n"
        out = docker_cli(engine, "exec", "-w", "/tmp", "-e", "FOO=bar", "execbox", "sh", "-c", "pwd; echo $FOO")
        assert out.stdout == "/tmp\nbar\n"
        missing = docker_cli(engine, "exec", "execbox", "nosuchcmd")
        assert missing.returncode == 127
        assert 'exec: "nosuchcmd": executable file not found in $PATH' in missing.stdout + missing.stderr
        # Same PID namespace as the container: its PID 1 is the container's sleep.
        assert docker_cli(engine, "exec", "execbox", "cat", "/proc/1/cmdline").stdout == "sleep\x00300\x00"
    finally:
        docker_cli(engine, "rm", "-f", "execbox")


def test_run_it_answers_typed_input_through_a_pty(engine: RunningDaemon) -> None:
    screen, code = _drive_pty(["docker", "run", "-it", "--rm", "busybox", "sh"], engine.env(),
                              b"echo $((6*7)); stty size; exit 5\n", rows=33, cols=99)
    assert code == 5
    lines = [line.strip() for line in screen.splitlines()]
    assert "42" in lines  # the typed arithmetic ran in the container's shell
    assert "33 99" in lines  # the pty's size reached the container


def test_exec_it_through_a_pty(engine: RunningDaemon) -> None:
    docker_cli(engine, "run", "-d", "--name", "ptybox", "busybox", "sleep", "300")
    try:
        screen, code = _drive_pty(["docker", "exec", "-it", "ptybox", "sh"], engine.env(), b"tty; exit 6\n")
        assert code == 6
        assert "/dev/pts/" in screen
    finally:
        docker_cli(engine, "rm", "-f", "ptybox")


def test_top_stats_update_rename_prune_and_df(engine: RunningDaemon) -> None:
    docker_cli(engine, "run", "-d", "--name", "inspected", "--memory", "64m", "busybox", "sleep", "300")
    try:
        top = docker_cli(engine, "top", "inspected").stdout.splitlines()
        assert top[0].split()[:3] == ["UID", "PID", "PPID"] and top[1].endswith("sleep 300")
        stats = json.loads(docker_cli(engine, "stats", "--no-stream", "--format", "{{json .}}", "inspected").stdout)
        assert stats["Name"] == "inspected" and stats["MemUsage"].endswith("/ 64MiB") and stats["PIDs"] == "1"
        assert docker_cli(engine, "update", "--memory", "128m", "inspected").returncode == 0
        assert docker_cli(engine, "inspect", "-f", "{{.HostConfig.Memory}}", "inspected").stdout.strip() == "134217728"
        stats = json.loads(docker_cli(engine, "stats", "--no-stream", "--format", "{{json .}}", "inspected").stdout)
        assert stats["MemUsage"].endswith("/ 128MiB")  # the cgroup limit changed in place
        assert docker_cli(engine, "rename", "inspected", "renamed").returncode == 0
        assert "renamed" in docker_cli(engine, "ps", "--format", "{{.Names}}").stdout.split()
        df = docker_cli(engine, "system", "df", "--format", "{{.Type}} {{.TotalCount}}").stdout.splitlines()
        assert "Containers 1" in df and "Images 2" in df  # every other test removes its containers
    finally:
        docker_cli(engine, "rm", "-f", "renamed")
    docker_cli(engine, "create", "--name", "stopped-one", "busybox", "true")
    docker_cli(engine, "create", "--name", "stopped-kept", "--label", "keep=yes", "busybox", "true")
    # Filters choose what goes: too young for until=1h, or labelled keep, and it stays.
    young = docker_cli(engine, "container", "prune", "-f", "--filter", "until=1h")
    assert young.returncode == 0, young.stderr
    names = docker_cli(engine, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "stopped-one" in names and "stopped-kept" in names
    pruned = docker_cli(engine, "container", "prune", "-f", "--filter", "label!=keep")
    assert pruned.returncode == 0 and "Deleted Containers:" in pruned.stdout
    names = docker_cli(engine, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "stopped-one" not in names and "stopped-kept" in names
    assert docker_cli(engine, "container", "prune", "-f").returncode == 0
    assert "stopped-kept" not in docker_cli(engine, "ps", "-a", "--format", "{{.Names}}").stdout.split()


def _wait_for(predicate, what: str, tries: int = 400) -> None:
    for _ in range(tries):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_restart_policies(engine: RunningDaemon) -> None:
    try:
        docker_cli(engine, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c",
                   "echo attempt; exit 1")
        _wait_for(lambda: docker_cli(engine, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}",
                                     "flaky").stdout.split() == ["2", "exited"], "two restarts then a stop")
        assert docker_cli(engine, "logs", "flaky").stdout.count("attempt") == 3
        docker_cli(engine, "run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c",
                   "echo run; sleep 0.2")
        _wait_for(lambda: docker_cli(engine, "logs", "always").stdout.count("run") >= 3, "three runs")
        assert docker_cli(engine, "stop", "-t", "0", "always").returncode == 0
        count = int(docker_cli(engine, "inspect", "-f", "{{.RestartCount}}", "always").stdout)
        time.sleep(0.5)  # a manual stop is final: no restart may follow (checked after the back-off would fire)
        assert int(docker_cli(engine, "inspect", "-f", "{{.RestartCount}}", "always").stdout) == count
        assert docker_cli(engine, "inspect", "-f", "{{.State.Status}}", "always").stdout.strip() == "exited"
        bad = docker_cli(engine, "run", "-d", "--restart", "sometimes", "busybox", "true")
        assert bad.returncode != 0 and "invalid restart policy" in bad.stderr
    finally:
        docker_cli(engine, "rm", "-f", "flaky", "always")


def test_restart_always_comes_back_after_a_full_stop(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        daemon = berthd.daemon
        docker_cli(daemon, "run", "-d", "--name", "phoenix", "--restart", "always", "busybox", "sleep", "300")
        docker_cli(daemon, "run", "-d", "--name", "mortal", "busybox", "sleep", "300")
        pids = [int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", n).stdout) for n in ("phoenix", "mortal")]
        shims = _shims_under(berthd.root)
        assert 1 <= len(shims) <= 2  # one shared shim host, or one shim per container
        # Like a reboot: the daemon, every shim and every container process are gone at once.
        berthd.halt(signal.SIGKILL)
        for pid in [*shims, *pids]:
            os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in [*shims, *pids]), "everything to die")
        daemon = berthd.start()

        def status(name: str) -> str:
            return docker_cli(daemon, "inspect", "-f", "{{.State.Status}}", name).stdout.strip()

        _wait_for(lambda: status("phoenix") == "running", "the always-restart container to come back")
        assert int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", "phoenix").stdout) not in pids
        assert docker_cli(daemon, "exec", "phoenix", "true").returncode == 0
        assert status("mortal") == "exited"


def _shims_under(root: Path) -> list[int]:
    """The shim processes of the berthd whose state is under `root` (found by their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # An exec'd shim runs `-m engine.containers.shim` (a host `engine.containers.shim_host`); forked by
        # the zygote they are titled `berth-shim` and `berth-shim-host`.
        is_shim = b"engine.containers.shim" in cmdline or cmdline.startswith(b"berth-shim")
        if is_shim and str(root).encode() in cmdline:
            found.append(int(entry.name))
    return found

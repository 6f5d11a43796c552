"""Issue #5's must-show items that asserted too little elsewhere: the effect, not just the exit status.

`update --memory` changes the container's cgroup, `pause` freezes it, `restart` makes a new run,
`system prune -f` removes what it lists and keeps what is in use, `events --since` replays a container's
lifecycle from that point only, and docker-py's logs, exec_run, attach (both ways) and events work.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.api.conftest import RunningDaemon, berthd_with_images
from tests.api.test_containers import _wait_for, docker_cli

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def engine(run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_images(run_tag, "busybox") as daemon:
        yield daemon


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stderr
    return out.stdout


def _cgroup_file(pid: int, controller: str, name: str, v2_name: str) -> Path:
    """A control file of the cgroup ``pid`` is in, on the host (the v1 controller's, or the v2 one)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path(f"/sys/fs/cgroup/{controller}{path}/{name}")
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            return Path(f"/sys/fs/cgroup{path}/{v2_name}")
    raise AssertionError(f"no {controller} cgroup for {pid}")


def memory_limit(pid: int) -> int:
    return int(_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max").read_text())


def test_update_memory_changes_the_cgroup_limit(engine: RunningDaemon) -> None:
    ok(docker_cli(engine, "run", "-d", "--name", "upd", "--memory", "64m", "busybox", "sleep", "300"))
    try:
        pid = int(ok(docker_cli(engine, "inspect", "-f", "{{.State.Pid}}", "upd")))
        assert memory_limit(pid) == 64 << 20
        ok(docker_cli(engine, "update", "--memory", "96m", "--memory-swap", "-1", "upd"))
        assert memory_limit(pid) == 96 << 20  # the running container's cgroup, in place
        assert ok(docker_cli(engine, "inspect", "-f", "{{.HostConfig.Memory}}", "upd")).strip() == str(96 << 20)
        # And the next run gets it too.
        ok(docker_cli(engine, "restart", "-t", "0", "upd"))
        pid = int(ok(docker_cli(engine, "inspect", "-f", "{{.State.Pid}}", "upd")))
        assert memory_limit(pid) == 96 << 20
        refused = docker_cli(engine, "update", "--memory", "lots", "upd")
        assert refused.returncode != 0 and "invalid" in refused.stderr.lower()
    finally:
        docker_cli(engine, "rm", "-f", "upd")


def test_system_prune_removes_only_what_is_unused(engine: RunningDaemon, tmp_path: Path) -> None:
    ok(docker_cli(engine, "network", "create", "prune-unused"))
    ok(docker_cli(engine, "network", "create", "prune-used"))
    ok(docker_cli(engine, "run", "-d", "--name", "prune-running", "--network", "prune-used", "busybox", "sleep", "300"))
    ok(docker_cli(engine, "run", "--name", "prune-exited", "busybox", "sh", "-c", "echo x > /made"))
    dangling = ok(docker_cli(engine, "commit", "prune-exited")).strip()  # no tag: a dangling image
    exited_id = ok(docker_cli(engine, "inspect", "-f", "{{.Id}}", "prune-exited")).strip()
    try:
        out = ok(docker_cli(engine, "system", "prune", "-f"))
        assert "Deleted Containers:" in out and exited_id in out
        assert "Deleted Networks:" in out and "prune-unused" in out and "prune-used" not in out
        assert "Deleted Images:" in out and dangling.removeprefix("sha256:") in out
        assert "Total reclaimed space" in out
        assert docker_cli(engine, "inspect", "prune-exited").returncode != 0
        assert docker_cli(engine, "network", "inspect", "prune-unused").returncode != 0
        assert docker_cli(engine, "image", "inspect", dangling).returncode != 0
        # What is in use stays: the running container, its network, the tagged image.
        assert ok(docker_cli(engine, "inspect", "-f", "{{.State.Status}}", "prune-running")).strip() == "running"
        ok(docker_cli(engine, "network", "inspect", "prune-used"))
        ok(docker_cli(engine, "image", "inspect", "busybox"))
    finally:
        docker_cli(engine, "rm", "-f", "prune-running", "prune-exited")
        docker_cli(engine, "network", "rm", "prune-used", "prune-unused")


def _events(daemon: RunningDaemon, *args: str) -> list[dict[str, Any]]:
    out = ok(docker_cli(daemon, "events", "--format", "{{json .}}", *args))
    return [json.loads(line) for line in out.splitlines()]


def test_events_since_replays_a_lifecycle_from_that_point(engine: RunningDaemon) -> None:
    start = f"{time.time() - 1:.3f}"
    ok(docker_cli(engine, "create", "--name", "ev-first", "busybox", "sh", "-c", "exit 3"))
    ok(docker_cli(engine, "start", "ev-first"))
    assert ok(docker_cli(engine, "wait", "ev-first")).strip() == "3"
    ok(docker_cli(engine, "rm", "ev-first"))
    first = [e for e in _events(engine, "--since", start, "--until", f"{time.time():.3f}",
                                "--filter", "container=ev-first") if e["Type"] == "container"]
    assert [e["Action"] for e in first] == ["create", "start", "die", "destroy"]
    assert first[2]["Actor"]["Attributes"]["exitCode"] == "3"
    assert all(e["Actor"]["Attributes"]["name"] == "ev-first" for e in first)
    # From just after the first container's last event: only what came later.
    after = first[-1]["timeNano"] + 1
    since = f"{after // 10**9}.{after % 10**9:09d}"
    ok(docker_cli(engine, "run", "--rm", "--name", "ev-second", "busybox", "true"))
    later = _events(engine, "--since", since, "--until", f"{time.time():.3f}", "--filter", "type=container")
    names = {e["Actor"]["Attributes"]["name"] for e in later}
    assert names == {"ev-second"}
    assert [e["Action"] for e in later][-2:] == ["die", "destroy"]


def test_docker_py_logs_exec_run_attach_and_events(engine: RunningDaemon) -> None:
    client = docker.DockerClient(base_url=engine.docker_host, version="auto")
    since = int(time.time()) - 1
    try:
        # attach to a created container, then start it: the stream carries all it prints, split by stream.
        container = client.containers.create("busybox", ["sh", "-c", "echo to-out; echo to-err >&2"],
                                             name="py-attach")
        stream = container.attach(stdout=True, stderr=True, stream=True, demux=True)
        container.start()
        out, err = b"", b""
        for stdout, stderr in stream:
            out += stdout or b""
            err += stderr or b""
        assert (out, err) == (b"to-out\n", b"to-err\n")
        assert container.wait()["StatusCode"] == 0
        assert container.logs(stdout=True, stderr=False) == b"to-out\n"
        container.remove()

        # attach's stdin: what is sent reaches the process, its answer comes back on the same socket.
        container = client.containers.run("busybox", ["sh", "-c", "read line; echo got:$line"], name="py-stdin",
                                          stdin_open=True, detach=True)
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        raw: socket.socket = sock._sock  # docker-py hands back the socket's file object
        raw.sendall(b"hello\n")
        received = b""
        while chunk := raw.recv(4096):
            received += chunk
        sock.close()
        assert received[8:] == b"got:hello\n" and received[0] == 1  # one stdout frame (8-byte header)
        assert container.wait()["StatusCode"] == 0
        container.remove()

        # exec_run in a running container; logs with timestamps and tail.
        container = client.containers.run("busybox", ["sh", "-c", "echo one; echo two; exec sleep 300"],
                                          name="py-exec", detach=True)
        code, output = container.exec_run(["sh", "-c", "echo $((6*7)); exit 2"])
        assert (code, output) == (2, b"42\n")
        code, (stdout, stderr) = container.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, stdout, stderr) == (0, b"o\n", b"e\n")
        assert container.logs(tail=1) == b"two\n"
        stamped = container.logs(timestamps=True).decode().splitlines()
        assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two"]
        container.stop(timeout=0)
        container.remove()

        events = client.events(since=since, until=int(time.time()) + 1, decode=True,
                               filters={"type": "container", "container": "py-exec"})
        actions = [e["Action"] for e in events]
        assert actions[:2] == ["create", "start"] and actions[-1] == "destroy"
        assert any(a.startswith("exec_start: sh -c echo $((6*7))") for a in actions)
    finally:
        for name in ("py-attach", "py-stdin", "py-exec"):
            docker_cli(engine, "rm", "-f", name)
        client.close()



def test_pause_freezes_the_cgroup_and_restart_makes_a_new_run(engine: RunningDaemon) -> None:
    ok(docker_cli(engine, "run", "-d", "--name", "frozen", "busybox", "sleep", "300"))
    try:
        pid = int(ok(docker_cli(engine, "inspect", "-f", "{{.State.Pid}}", "frozen")))
        freezer = _cgroup_file(pid, "freezer", "freezer.state", "cgroup.freeze")
        ok(docker_cli(engine, "pause", "frozen"))
        assert freezer.read_text().strip() in ("FROZEN", "1")
        refused = docker_cli(engine, "exec", "frozen", "true")
        assert refused.returncode != 0 and "is paused" in refused.stderr
        ok(docker_cli(engine, "unpause", "frozen"))
        assert freezer.read_text().strip() in ("THAWED", "0")
        assert ok(docker_cli(engine, "exec", "frozen", "echo", "thawed")) == "thawed\n"
        # restart: the old process is gone, a new run started after it.
        started = ok(docker_cli(engine, "inspect", "-f", "{{.State.StartedAt}}", "frozen")).strip()
        ok(docker_cli(engine, "restart", "-t", "0", "frozen"))
        state = json.loads(ok(docker_cli(engine, "inspect", "-f", "{{json .State}}", "frozen")))
        assert state["Status"] == "running" and state["StartedAt"] > started and state["Pid"] != pid
    finally:
        docker_cli(engine, "rm", "-f", "frozen")


def test_a_run_rm_that_cannot_start_is_removed(engine: RunningDaemon) -> None:
    """The failed start removes its --rm container from inside its own hold of the container's lock."""
    out = docker_cli(engine, "run", "--rm", "--name", "never-ran", "busybox", "/no/such/binary")
    assert out.returncode == 127 and "no such file or directory" in out.stderr, out.stderr
    _wait_for(lambda: docker_cli(engine, "inspect", "never-ran").returncode != 0, "the --rm container to go")
    assert "never-ran" not in ok(docker_cli(engine, "ps", "-a", "--format", "{{.Names}}")).split()

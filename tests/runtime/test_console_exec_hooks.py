"""--console-socket, exec into a running container, and lifecycle hooks."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from engine.runtime.console import receive_master
from engine.runtime.procinfo import reap_if_child

from .conftest import Bundle, RuntimeCLI

pytestmark = pytest.mark.needs_root


def read_until_closed(master: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError as exc:
            if exc.errno == errno.EIO:  # the slave side is closed: the process is gone
                return data
            raise
        if not chunk:
            return data
        data += chunk


def test_console_socket_receives_the_pty_master(bundle: Bundle, runtime: RuntimeCLI, tmp_path: Path) -> None:
    bundle.set_process(["sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; stty size"],
                       terminal=True, consoleSize={"height": 33, "width": 99})
    sock_path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    cid = runtime.new_id()
    with listener:
        runtime("create", "--bundle", str(bundle.path), "--console-socket", sock_path, cid)
        conn, _ = listener.accept()
        with conn:
            master, name = receive_master(conn)
    assert stat.S_ISCHR(os.fstat(master).st_mode) and name.startswith("/dev/pts/")
    pid = runtime.state(cid)["pid"]
    runtime("start", cid)
    try:
        out = read_until_closed(master).decode().replace("\r\n", "\n")
    finally:
        os.close(master)
    reap_if_child(int(pid))
    # The pty comes from the container's own devpts instance: inside it is /dev/pts/0.
    assert out.split("\n")[:3] == ["/dev/pts/0", "stdin-is-a-tty", "33 99"]


def test_exec_joins_the_containers_namespaces(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.spec["hostname"] = "exec-target"
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pid = runtime.state(cid)["pid"]
    out = runtime("exec", cid, "sh", "-c",
                  "for n in pid mnt net; do readlink /proc/self/ns/$n; done; hostname; cat /proc/1/cmdline; "
                  "echo; grep CapEff /proc/self/status").stdout.decode().split("\n")
    assert out[0] == os.readlink(f"/proc/{pid}/ns/pid")
    assert out[1] == os.readlink(f"/proc/{pid}/ns/mnt")
    assert out[2] == os.readlink(f"/proc/{pid}/ns/net")
    assert out[3] == "exec-target"
    assert out[4] == "sleep\x001000\x00"
    assert out[5].split() == ["CapEff:", "00000000a80425fb"]
    # The exec'd process was in the container's cgroup and PID namespace: `ps` saw it come and go.
    assert json.loads(runtime("ps", "--format", "json", cid).stdout) == [pid]


def test_exec_returns_the_exit_status_and_applies_cwd_env_user(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    result = runtime("exec", "--cwd", "/tmp", "--env", "X=42", "--user", "1000:1000", cid,
                     "sh", "-c", "pwd; echo $X; id -u; exit 3", check=False)
    assert result.returncode == 3
    assert result.stdout.decode().split() == ["/tmp", "42", "1000"]


def test_hooks_run_in_order_with_the_state_on_stdin(bundle: Bundle, runtime: RuntimeCLI, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    # Each hook appends its name and the state JSON it got on stdin.
    script.write_text(f'#!/bin/sh\necho "$1 $(cat)" >> {log}\n')
    script.chmod(0o755)

    def hook(name: str) -> dict[str, object]:
        return {"path": str(script), "args": ["hook.sh", name], "timeout": 30}

    kinds = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    bundle.spec["hooks"] = {kind: [hook(kind)] for kind in kinds}
    bundle.set_process(["true"])
    cid = runtime.new_id()
    runtime("create", "--bundle", str(bundle.path), cid)
    pid = runtime.state(cid)["pid"]
    runtime("start", cid)
    reap_if_child(int(pid))
    runtime("delete", cid)
    entries = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [name for name, _ in entries] == list(kinds)
    for name, payload in entries:
        state = json.loads(payload)
        assert state["id"] == cid and state["bundle"] == str(bundle.path), name
        if name != "poststop":
            assert state["pid"] == pid, name
    assert json.loads(entries[-1][1])["status"] == "stopped"


def test_a_failing_create_runtime_hook_fails_create(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.spec["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}]}
    bundle.set_process(["true"])
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(bundle.path), cid, check=False)
    assert result.returncode == 1 and b"createRuntime hook /bin/sh exited 3: nope" in result.stderr
    assert not (runtime.root / cid).exists()


def test_a_hook_that_outlives_its_timeout_fails_create(bundle: Bundle, runtime: RuntimeCLI) -> None:
    # The hook blocks reading a FIFO nobody writes: it can only end by the runtime's timeout.
    fifo = bundle.path / "never"
    os.mkfifo(fifo)
    bundle.spec["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat {fifo}"], "timeout": 1}]}
    bundle.set_process(["true"])
    cid = runtime.new_id()
    result = runtime("create", "--bundle", str(bundle.path), cid, check=False)
    assert result.returncode == 1 and b"prestart hook /bin/sh timed out after 1s" in result.stderr
    assert not (runtime.root / cid).exists()


def test_exec_with_a_process_json(bundle: Bundle, runtime: RuntimeCLI, tmp_path: Path) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    process = {"args": ["sh", "-c", "id -u; echo $WHO; grep CapEff /proc/self/status; pwd"], "cwd": "/root",
               "env": ["PATH=/bin", "WHO=json"], "user": {"uid": 33, "gid": 33}, "noNewPrivileges": True,
               "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}}
    (tmp_path / "process.json").write_text(json.dumps(process))
    out = runtime("exec", "--process", str(tmp_path / "process.json"), cid).stdout.decode().split()
    # A non-root user keeps no effective capabilities across execve without ambient ones (capabilities(7)).
    assert out == ["33", "json", "CapEff:", "0000000000000000", "/root"]

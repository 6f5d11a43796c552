"""The per-container shim: stdio, json-file log, attach, stdin half-close, TTY resize, exit record."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.containers.json_log import read_records
from engine.containers.oci_spec import SpecInputs, build_spec
from engine.containers.shim import SHIM_SOCKET, read_exit_record
from engine.runtime.lifecycle import start_container
from engine.runtime.state import StateStore
from engine.stdcopy import STDERR, STDOUT, FrameDecoder

pytestmark = pytest.mark.needs_root
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningShim:
    workdir: Path
    runtime_root: Path
    container_id: str
    proc: subprocess.Popen[bytes]
    init_pid: int

    def request(self, op: dict) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(self.workdir / SHIM_SOCKET))
        sock.sendall(json.dumps(op).encode() + b"\n")
        return sock

    def call(self, op: dict) -> dict:
        with self.request(op) as sock:
            return json.loads(_read_line(sock))

    def start(self) -> None:
        start_container(StateStore(str(self.runtime_root)), self.container_id)


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture
def make_shim(tmp_path: Path, busybox_rootfs: Path, run_tag: str) -> Iterator:
    shims: list[RunningShim] = []

    def make(args: list[str], tty: bool = False, open_stdin: bool = False) -> RunningShim:
        container_id = f"{run_tag}-shim{len(shims)}"
        workdir = tmp_path / f"c{len(shims)}"
        bundle = workdir / "bundle"
        rootfs = bundle / "rootfs"
        shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
        built = build_spec(SpecInputs(container_id, {"Cmd": args, "Tty": tty}, {}, {}, str(rootfs),
                                      f"{run_tag}/{container_id}"))
        (bundle / "config.json").write_text(json.dumps(built.spec))
        runtime_root = tmp_path / "runtime"
        read_fd, write_fd = os.pipe()
        cmd = [sys.executable, "-m", "engine.containers.shim", "--runtime-root", str(runtime_root),
               "--id", container_id, "--bundle", str(bundle), "--workdir", str(workdir),
               "--log-path", str(workdir / "json.log"), "--report-fd", str(write_fd)]
        cmd += ["--tty"] if tty else []
        cmd += ["--open-stdin", "--stdin-once"] if open_stdin else []
        proc = subprocess.Popen(cmd, pass_fds=(write_fd,), cwd=REPO, stdin=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as report:
            ready = json.loads(report.readline())
        assert "pid" in ready, ready
        shim = RunningShim(workdir, runtime_root, container_id, proc, ready["pid"])
        shims.append(shim)
        return shim

    yield make
    for shim in shims:
        if shim.proc.poll() is None:
            os.kill(shim.init_pid, 9) if os.path.exists(f"/proc/{shim.init_pid}") else None
            shim.proc.wait(20)


def test_output_goes_to_log_and_exit_code_is_recorded(make_shim) -> None:
    shim = make_shim(["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    waiter = shim.request({"op": "wait"})
    shim.start()
    record = json.loads(_read_line(waiter))
    waiter.close()
    assert record["ExitCode"] == 3
    assert shim.proc.wait(20) == 0
    logs = [(r.stream, r.text) for r in read_records(shim.workdir / "json.log")]
    assert logs == [("stdout", "hello\n"), ("stderr", "oops\n")]
    exit_record = read_exit_record(shim.workdir)
    assert exit_record is not None and exit_record.exit_code == 3
    assert not (shim.runtime_root / shim.container_id).exists()  # runtime state cleaned up


def test_attach_before_start_gets_every_frame(make_shim) -> None:
    shim = make_shim(["sh", "-c", "echo one; echo two >&2"])
    attach = shim.request({"op": "attach", "stdin": False})
    assert json.loads(_read_line(attach)) == {"ok": True}
    attach.shutdown(socket.SHUT_WR)  # no stdin to send: half-close at once, like the docker CLI
    shim.start()
    frames = FrameDecoder().feed(_read_all(attach))
    attach.close()
    assert b"".join(p for s, p in frames if s == STDOUT) == b"one\n"
    assert b"".join(p for s, p in frames if s == STDERR) == b"two\n"


def test_stdin_reaches_the_container_and_half_close_ends_it(make_shim) -> None:
    shim = make_shim(["cat"], open_stdin=True)
    attach = shim.request({"op": "attach", "stdin": True})
    assert json.loads(_read_line(attach)) == {"ok": True}
    shim.start()
    attach.sendall(b"ping\n")
    attach.shutdown(socket.SHUT_WR)
    frames = FrameDecoder().feed(_read_all(attach))
    attach.close()
    assert b"".join(p for _, p in frames) == b"ping\n"
    assert shim.proc.wait(20) == 0
    exit_record = read_exit_record(shim.workdir)
    assert exit_record is not None and exit_record.exit_code == 0


def test_tty_resize_reaches_the_container(make_shim) -> None:
    shim = make_shim(["sh", "-c", "stty size; tty"], tty=True)
    assert shim.call({"op": "resize", "height": 31, "width": 101}) == {"ok": True}
    attach = shim.request({"op": "attach", "stdin": False})
    _read_line(attach)
    attach.shutdown(socket.SHUT_WR)
    shim.start()
    output = b"".join(p for _, p in FrameDecoder().feed(_read_all(attach)))
    attach.close()
    assert output.splitlines()[0].strip() == b"31 101"
    assert output.splitlines()[1].strip() == b"/dev/pts/0"


def test_killed_container_reports_128_plus_signal(make_shim) -> None:
    shim = make_shim(["sleep", "1000"])
    shim.start()
    waiter = shim.request({"op": "wait"})
    os.kill(shim.init_pid, 9)
    assert json.loads(_read_line(waiter))["ExitCode"] == 137
    waiter.close()
    shim.proc.wait(20)


def test_a_wait_queued_as_the_container_dies_gets_the_exit_code(make_shim) -> None:
    """The shim is stopped while a `wait` connects and the init is killed: when it runs again it has
    an exit to record and a connection it never accepted; the connection is answered, not reset."""
    shim = make_shim(["sleep", "1000"])
    shim.start()
    os.kill(shim.proc.pid, signal.SIGSTOP)
    try:
        waiter = shim.request({"op": "wait"})  # queued on the listener: the shim cannot accept it now
        os.kill(shim.init_pid, 9)
        _wait_until_zombie(shim.init_pid)
    finally:
        os.kill(shim.proc.pid, signal.SIGCONT)
    with waiter:
        assert json.loads(_read_line(waiter))["ExitCode"] == 137
    assert shim.proc.wait(20) == 0


def _wait_until_zombie(pid: int) -> None:
    # Bounded by the kernel's handling of SIGKILL, not by a guess: the state is read until it says so.
    for _ in range(100_000):
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        os.sched_yield()
    raise AssertionError(f"pid {pid} did not die after SIGKILL")

"""`berth run -it` under a real pty driven by the test: typing, resize, exit status, detach keys.

The test is the terminal: pty.fork() gives berth a controlling terminal whose
master side we hold, so TIOCSWINSZ on it sends berth a real SIGWINCH.
Waits are "until this text appears" with a generous deadline, never sleeps.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.cli.conftest import BERTH, Tools

pytestmark = pytest.mark.needs_root

DEADLINE = 30.0


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once, nothing else in a forked test process
            os.execve(argv[0], argv, env)
        self.seen = b""

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def expect(self, token: bytes) -> bytes:
        """Read until `token` shows up; returns (and forgets) everything up to it."""
        end = time.monotonic() + DEADLINE
        while token not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"{token!r} never appeared; got {self.seen[-300:]!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # EIO: the child side closed
                    data = b""
                assert data, f"terminal closed before {token!r}; got {self.seen[-300:]!r}"
                self.seen += data
        before, _, self.seen = self.seen.partition(token)
        return before + token

    def resize(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def exit_code(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.pid = 0
        return os.waitstatus_to_exitcode(status)


@contextmanager
def shell_prompt(argv: list[str], env: dict[str, str], name: str) -> Iterator[Terminal]:
    """`argv` started on a pty, once its shell prompt shows; ended (by pid) if the test left it running."""
    term = Terminal(argv, env, name)
    try:
        term.expect(b"# ")
        yield term
    finally:
        if term.pid:  # a test that failed half way: the berth process is ours to end
            os.kill(term.pid, 9)
            os.waitpid(term.pid, 0)
            os.close(term.fd)


@pytest.fixture
def shell(tools: Tools, busybox: str, request: pytest.FixtureRequest) -> Iterator[Terminal]:
    name = request.node.name.replace("[", "-").replace("]", "")[:40]
    with shell_prompt([BERTH, "run", "-it", "--rm", "--name", name, busybox, "sh"], tools.daemon.env(), name) as term:
        yield term


def test_typed_command_runs(shell: Terminal) -> None:
    shell.type(b"echo $((6 * 7))\n")
    assert b"\r\n42\r\n" in shell.expect(b"42\r\n")


def assert_resize_reaches(shell: Terminal, rows: int, cols: int) -> None:
    """Resize the terminal; the shell's `stty size` must come to say so.

    SIGWINCH → POST resize is asynchronous: ask again until the process sees it (bounded by DEADLINE).
    """
    shell.resize(rows, cols)
    end = time.monotonic() + DEADLINE
    while True:
        shell.type(b"echo size=$(stty size)=\n")
        shell.expect(b"size=")  # the echo of what we typed
        answer = shell.expect(b"=\r\n")
        if f"{rows} {cols}".encode() in answer:
            break
        assert time.monotonic() < end, f"size never reached the process: {answer!r}"


def test_resize_reaches_the_container(shell: Terminal) -> None:
    assert_resize_reaches(shell, 33, 101)


def test_exit_status_is_the_shells(shell: Terminal) -> None:
    shell.type(b"exit 3\n")
    assert shell.exit_code() == 3


def test_ctrl_p_ctrl_q_detaches_and_leaves_it_running(shell: Terminal, tools: Tools) -> None:
    shell.type(b"\x10\x11")
    assert shell.exit_code() == 0
    name = shell.name
    assert tools.ok("docker", "inspect", "-f", "{{.State.Running}}", name) == "true\n"
    tools.ok("docker", "rm", "-f", name)


def test_ctrl_p_alone_reaches_the_container(shell: Terminal) -> None:
    # A broken detach sequence is replayed: ctrl-p followed by "z" arrives as both bytes.
    shell.type(b"read v; printf '%s' \"$v\" | od -An -tx1\n")
    shell.expect(b"-tx1\r\n")
    shell.type(b"p\x10z\n")
    assert b"70 10 7a" in shell.expect(b"# ")

"""Running a container process in the foreground (`run`, `exec` without -d).

The caller becomes a child subreaper before forking, so the container's
process (a grandchild) is reparented to it and can be waited for; signals
the caller receives are forwarded (runc's signalHandler); with a terminal
and no --console-socket, the pty master is proxied to the caller's stdio.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import termios
import tty
from collections.abc import Iterator
from types import FrameType

from . import signals
from . import syscalls as sc
from .console import receive_master

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    import socket

_FORWARDED = (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT, signals.SIGUSR1, signals.SIGUSR2,
              signals.SIGWINCH)


def become_subreaper() -> None:
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)


#: sizeof(sockaddr_un.sun_path), the terminating NUL included (unix(7)).
SUN_PATH_MAX = 108


@contextlib.contextmanager
def console_listener(directory: str) -> Iterator[tuple[str, socket.socket]]:
    """A temporary --console-socket for `run -t`/`exec -t` without one.

    A socket path must fit sun_path (107 bytes): under a deep --root (a test's
    tmp dir, a long data root) it goes into a fresh private directory in the
    temp dir instead ("AF_UNIX path too long" otherwise).
    """
    import socket  # only for `run -t` without --console-socket
    import tempfile

    path = tempfile.mktemp(prefix="console-", suffix=".sock", dir=directory)
    private_dir = None
    if len(os.fsencode(path)) >= SUN_PATH_MAX:
        private_dir = tempfile.mkdtemp(prefix="berth-console-")  # mode 0700
        path = os.path.join(private_dir, "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(1)
        yield path, listener
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        if private_dir is not None:
            os.rmdir(private_dir)


def accept_master(listener: socket.socket) -> int:
    conn, _ = listener.accept()
    with conn:
        master, _ = receive_master(conn)
    return master


@contextlib.contextmanager
def forwarding_signals(pid: int) -> Iterator[None]:
    """Forward the signals we receive to ``pid`` (runc's signalHandler) while the block runs.

    Installed before the container's process starts, so no signal meant for it can kill us first.
    """
    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {s: signals.signal(s, forward) for s in _FORWARDED}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signals.signal(s, handler)


def wait_for_child(pid: int, master: int | None = None) -> int:
    """Pump the pty if any, reap ``pid`` and return its exit code (128+n if killed by signal n)."""
    if master is not None:
        _pump(master)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def wait_forwarding_signals(pid: int, master: int | None = None) -> int:
    with forwarding_signals(pid):
        return wait_for_child(pid, master)


def _pump(master: int) -> None:
    """Copy stdin -> master and master -> stdout until the pty's slave side is closed."""
    stdin_is_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_is_tty else None
    if stdin_is_tty:
        tty.setraw(0)
    readers = [master, 0]
    try:
        while True:
            try:
                ready, _, _ = select.select(readers, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as exc:
                    if exc.errno == errno.EIO:  # every slave fd closed: the process is gone
                        return
                    raise
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    readers.remove(0)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)

"""Running a container process in the foreground (`run`, `exec` without -d).

The caller becomes a child subreaper before forking, so the container's
process (a grandchild) is reparented to it and can be waited for; signals
the caller receives are forwarded (runc's signalHandler); with a terminal
and no --console-socket, the pty master is proxied to the caller's stdio.
"""

from __future__ import annotations

import errno
import os

from . import signals
from . import syscalls as sc

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    import socket
    from types import FrameType

_FORWARDED = (signals.SIGINT, signals.SIGTERM, signals.SIGHUP, signals.SIGQUIT, signals.SIGUSR1, signals.SIGUSR2,
              signals.SIGWINCH)


def become_subreaper() -> None:
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)


#: sizeof(sockaddr_un.sun_path), the terminating NUL included (unix(7)).
SUN_PATH_MAX = 108


class console_listener:  # lower case: used as a function, ``with console_listener(d) as (path, listener)``
    """A temporary --console-socket for `run -t`/`exec -t` without one, removed when the block ends.

    A socket path must fit sun_path (107 bytes): under a deep --root (a test's
    tmp dir, a long data root) it goes into a fresh private directory in the
    temp dir instead ("AF_UNIX path too long" otherwise).  A class rather than
    contextlib.contextmanager: contextlib is ~2 ms of every berth-runtime call.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = ""
        self.private_dir: str | None = None
        self.listener: socket.socket | None = None

    def __enter__(self) -> tuple[str, socket.socket]:
        import socket  # only for `run -t` without --console-socket
        import tempfile

        self.path = tempfile.mktemp(prefix="console-", suffix=".sock", dir=self.directory)
        if len(os.fsencode(self.path)) >= SUN_PATH_MAX:
            self.private_dir = tempfile.mkdtemp(prefix="berth-console-")  # mode 0700
            self.path = os.path.join(self.private_dir, "console.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.listener.bind(self.path)
            self.listener.listen(1)
        except BaseException:
            self.__exit__()
            raise
        return self.path, self.listener

    def __exit__(self, *_exc: object) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        if self.private_dir is not None:
            os.rmdir(self.private_dir)
            self.private_dir = None


def accept_master(listener: socket.socket) -> int:
    conn, _ = listener.accept()
    with conn:
        from .console import receive_master  # terminals only

        master, _ = receive_master(conn)
    return master


class forwarding_signals:  # lower case: used as a function, ``with forwarding_signals(pid):``
    """Forward the signals we receive to ``pid`` (runc's signalHandler) while the block runs.

    Installed before the container's process starts, so no signal meant for it can kill us first.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.previous: dict[int, signals.Handler] = {}

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:  # it has exited: its reaping is on its way
            pass

    def __enter__(self) -> None:
        self.previous = {s: signals.signal(s, self._forward) for s in _FORWARDED}

    def __exit__(self, *_exc: object) -> None:
        for s, handler in self.previous.items():
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
    import select  # only with a terminal
    import termios
    import tty

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

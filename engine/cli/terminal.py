"""The local terminal during `run -it` / `attach`: raw mode, its size, and SIGWINCH as a readable fd."""

from __future__ import annotations

import os
import signal
import termios
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Keystrokes go to the container unprocessed (ctrl-c included), restored however we leave."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def size(fd: int) -> tuple[int, int] | None:
    """(rows, columns), or None when fd is not a terminal."""
    try:
        columns, rows = os.get_terminal_size(fd)
    except OSError:
        return None
    return rows, columns


@contextmanager
def winch_pipe() -> Iterator[int]:
    """A fd that becomes readable whenever the terminal is resized (for a select loop, no threads)."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    os.set_blocking(read_end, False)
    # Python only writes to the wakeup fd for signals that have a Python-level handler.
    previous_handler = signal.signal(signal.SIGWINCH, lambda _signum, _frame: None)
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    try:
        yield read_end
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGWINCH, previous_handler)
        os.close(read_end)
        os.close(write_end)


PROXIED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


@contextmanager
def forward_signals(send: Callable[[str], None]) -> Iterator[None]:
    """docker's --sig-proxy: signals this process gets go to the container instead (no TTY to carry ^C)."""
    previous = {}
    for name in PROXIED_SIGNALS:
        signum = getattr(signal, name)
        previous[signum] = signal.signal(signum, lambda number, _frame: send(signal.Signals(number).name))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass

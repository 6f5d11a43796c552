"""The container's terminal (runtime-spec config.md#console, runc's --console-socket).

The container's PID 1 opens /dev/ptmx of its *own* devpts instance after
pivot_root (a pty from the host's devpts would not be a tty inside), then
sends the master fd to whoever listens on --console-socket with SCM_RIGHTS,
the message body carrying the pty name like runc's utils.SendFile.
"""

from __future__ import annotations

import fcntl
import os
import struct

from . import syscalls as sc
from .abcs import Mapping
from .paths_in_root import make_target

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    import socket
    from typing import Any

# <asm-generic/ioctls.h>
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty() -> tuple[int, str]:
    """(master fd, slave path) from the current root's /dev/ptmx."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
    return master, f"/dev/pts/{number}"


def set_size(fd: int, size: Mapping[str, Any] | None) -> None:
    if size:
        import termios  # terminals only; in the init, already imported by init.preload_for_child

        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(size["height"]), int(size["width"]), 0, 0))


def bind_console(slave_path: str) -> None:
    """/dev/console is the pty slave (config-linux.md#default-devices)."""
    make_target("/dev/console", is_dir=False)
    sc.mount(slave_path, "/dev/console", None, sc.MS_BIND)


def send_master(sock: socket.socket, master: int, name: str) -> None:
    import socket  # terminals only: not on every berth-runtime call (sync.py)

    socket.send_fds(sock, [name.encode()], [master])


def receive_master(sock: socket.socket) -> tuple[int, str]:
    """What a --console-socket listener does: one message, one fd."""
    import socket  # terminals only: not on every berth-runtime call (sync.py)

    msg, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("no file descriptor received on the console socket")
    return fds[0], msg.decode(errors="replace")


def become_controlling_terminal(slave_path: str) -> None:
    """Open the slave, make it our controlling tty (we are a session leader) and our stdio."""
    import termios  # terminals only; in the init, already imported by init.preload_for_child

    slave = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)

"""The parent <-> init channel: one JSON object per SOCK_SEQPACKET message.

runc uses a similar typed sync pipe (libcontainer/sync.go: procReady,
procHooks, procResume...).  Message types used by Berth:
  child -> parent: {"type": "pid", "pid": N}        bootstrap forked the init
                   {"type": "userns"}                unshared CLONE_NEWUSER, write my maps
                   {"type": "hooks"}                 rootfs ready, run createRuntime hooks (only if hooks are set)
                   {"type": "ready"}                 waiting on exec.fifo
                   {"type": "error", "message": s}   setup failed
  parent -> child: {"type": "continue"}
"""

from __future__ import annotations

import _socket
import os

from . import fastjson
from .errors import SetupFailed

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

_MAX = 65536

# The C module's socket type, which socket.socket subclasses: the channel needs only socketpair, send,
# recv and close, and `import socket` (selectors, array, an enum per constant family) is ~2 ms of every
# berth-runtime call.  It has no `with` support nor set_inheritable: try/finally close, os.set_inheritable.
Socket = _socket.socket


def channel() -> tuple[Socket, Socket]:
    """(parent end, child end); the child end is inherited across fork."""
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    os.set_inheritable(child.fileno(), True)
    return parent, child


def send(sock: Socket, msg_type: str, **fields: Any) -> None:
    sock.send(fastjson.dumps({"type": msg_type, **fields}).encode())


def receive(sock: Socket) -> dict[str, Any]:
    raw = sock.recv(_MAX)
    if not raw:
        raise SetupFailed("container init exited before reporting (see its stderr)")
    msg: dict[str, Any] = fastjson.loads(raw)
    return msg


def expect(sock: Socket, msg_type: str) -> dict[str, Any]:
    """Receive the next message; an error report from the child becomes SetupFailed."""
    msg = receive(sock)
    if msg.get("type") == "error":
        raise SetupFailed(str(msg.get("message")))
    if msg.get("type") != msg_type:
        raise SetupFailed(f"unexpected message from init: {msg!r} (wanted {msg_type})")
    return msg

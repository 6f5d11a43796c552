"""The byte pump of `berth system dial-stdio`: stdin → engine socket, engine socket → stdout.

Docker's semantics: stdin's EOF half-closes the socket (a hijacked attach keeps
receiving output); the engine's EOF ends the relay at once; so does the client
hanging up on stdout (an ssh channel closed), rather than the engine's next
byte.  Only builtin modules: engine/cli/fast.py runs this on its fast path (an
ssh:// client starts one per connection).
"""

from __future__ import annotations

import os
import select

TYPE_CHECKING = False  # not typing's: the fast path imports this module
if TYPE_CHECKING:
    import _socket

CHUNK = 64 * 1024
SHUT_WR = 1  # socket.SHUT_WR, without importing socket


def relay(sock: _socket.socket, stdin: int = 0, stdout: int = 1) -> int:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(stdin, select.POLLIN)
    poller.register(stdout, 0)  # only its hangup (POLLERR/POLLHUP are always reported)
    try:
        while True:
            for fd, _ in poller.poll():
                if fd == stdout:
                    return 0
                if fd == stdin:
                    data = os.read(stdin, CHUNK)
                    if data:
                        sock.sendall(data)
                    else:
                        sock.shutdown(SHUT_WR)
                        poller.unregister(stdin)
                    continue
                data = sock.recv(CHUNK)
                while getattr(sock, "pending", lambda: 0)():  # TLS: bytes already decrypted are not `ready`
                    data += sock.recv(CHUNK)
                if not data:
                    return 0
                view = memoryview(data)
                while view:
                    view = view[os.write(stdout, view):]
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the client went away
    finally:
        sock.close()

"""The shim host's decision to exit, against a control connection arriving at that moment.

The host exits when it supervises nothing and no berthd holds a control connection.  A berthd
that connects just then (its connection accepted in the same loop turn as the last one's end)
must be told "not accepting", never answered as if the host went on and then left mid-request.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from engine.containers.shim_host import ShimHost
from engine.runtime.forkserver import listen_seqpacket


def _hello(conn: socket.socket) -> dict[str, object]:
    conn.sendall(b'{"op": "hello"}\n')
    line = conn.makefile("rb").readline()
    return json.loads(line) if line else {}


async def _exit_race(path: Path) -> tuple[dict[str, object], bool]:
    host = ShimHost(str(path), max_containers=0)
    serving = asyncio.ensure_future(host.serve(listen_seqpacket(str(path), socket.SOCK_STREAM)))
    first = socket.socket(socket.AF_UNIX)
    first.connect(str(path))
    assert (await asyncio.to_thread(_hello, first))["accepting"] is True
    # Without giving the loop a turn: the only control connection goes and a new one arrives.
    first.close()
    second = socket.socket(socket.AF_UNIX)
    second.connect(str(path))
    reply = await asyncio.to_thread(_hello, second)  # {} if the host left without an answer
    second.close()
    await asyncio.wait_for(serving, 30)
    return reply, path.exists()


def test_a_connection_racing_the_exit_is_refused_not_dropped(tmp_path: Path) -> None:
    reply, socket_left = asyncio.run(_exit_race(tmp_path / "h.sock"))
    assert reply.get("accepting") is False, reply
    assert not socket_left

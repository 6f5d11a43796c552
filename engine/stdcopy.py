"""Docker's multiplexed stream framing, spoken by both the API server and the client.

Non-TTY attach, exec and logs carry stdout and stderr on one connection: each
frame is an 8-byte header (stream id: 0 stdin, 1 stdout, 2 stderr, 3 system
error; three zero bytes; big-endian payload length) and the payload
(moby's pkg/stdcopy).  TTY streams are raw and never framed.
"""

from __future__ import annotations

import struct

STDIN, STDOUT, STDERR, SYSTEM = 0, 1, 2, 3
_FRAME_HEADER = struct.Struct(">BxxxL")


class FrameDecoder:
    """Docker's multiplexed stream (non-TTY attach/exec/logs): 8-byte header, then payload.

    Header: stream id (0 stdin, 1 stdout, 2 stderr, 3 system error), three zero
    bytes, big-endian payload length (moby's pkg/stdcopy).
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buffer) >= _FRAME_HEADER.size:
            stream, length = _FRAME_HEADER.unpack_from(self._buffer)
            end = _FRAME_HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((stream, self._buffer[_FRAME_HEADER.size:end]))
            self._buffer = self._buffer[end:]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)


def encode_frame(stream: int, payload: bytes) -> bytes:
    return _FRAME_HEADER.pack(stream, len(payload)) + payload

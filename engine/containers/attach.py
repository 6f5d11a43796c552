"""Fan-out of a running container's output to attached clients, and their stdin to it.

The daemon keeps one attach connection to the container's shim per run and
relays: frames to every client (raw payload for a TTY, stdcopy frames with
only the streams each client asked for otherwise), and client stdin bytes to
the shim.  Clients may attach before `start` (what `docker run` does): they
wait here until the run begins, so no output is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from engine.stdcopy import STDERR, STDOUT, FrameDecoder, encode_frame

log = logging.getLogger(__name__)


@dataclass(eq=False)
class AttachClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    early_stdin: bytes = b""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, stream: int, payload: bytes) -> None:
        if self.writer.is_closing():
            return
        if (stream == STDOUT and not self.stdout) or (stream == STDERR and not self.stderr):
            return
        self.writer.write(payload if self.tty else encode_frame(stream, payload))

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        self.done.set()


class AttachHub:
    """One per container; lives as long as the daemon knows the container."""

    def __init__(self) -> None:
        self.clients: set[AttachClient] = set()
        self._shim_writer: asyncio.StreamWriter | None = None
        self._stdin_once = False
        self._relay: asyncio.Task[None] | None = None
        self._stdin_tasks: set[asyncio.Task[None]] = set()

    def _start_stdin(self, client: AttachClient) -> None:
        # Keep a reference: the event loop holds tasks only weakly.
        task = asyncio.ensure_future(self._pump_stdin(client))
        self._stdin_tasks.add(task)
        task.add_done_callback(self._stdin_tasks.discard)

    def add(self, client: AttachClient) -> None:
        self.clients.add(client)
        if self._shim_writer is not None and client.stdin:
            self._start_stdin(client)

    def close_all(self) -> None:
        """The run could not begin: end every waiting client's stream."""
        for client in list(self.clients):
            client.close()
        self.clients.clear()

    async def connect(self, shim_reader: asyncio.StreamReader, shim_writer: asyncio.StreamWriter,
                      stdin_once: bool) -> None:
        """A run began: relay between the shim and every client, present and future."""
        self._shim_writer = shim_writer
        self._stdin_once = stdin_once
        for client in list(self.clients):
            if client.stdin:
                self._start_stdin(client)
        self._relay = asyncio.ensure_future(self._pump_output(shim_reader))

    async def _pump_output(self, shim_reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder()
        try:
            while data := await shim_reader.read(64 * 1024):
                for stream, payload in decoder.feed(data):
                    for client in list(self.clients):
                        client.send(stream, payload)
                await asyncio.gather(*(self._drain(c) for c in list(self.clients)))
        except ConnectionError:
            log.info("shim attach stream broke")
        finally:
            # The run ended: attached clients see their stream close, like docker attach.
            for client in list(self.clients):
                client.close()
            self.clients.clear()
            if self._shim_writer is not None:
                self._shim_writer.close()
            self._shim_writer = None

    async def _drain(self, client: AttachClient) -> None:
        try:
            await client.writer.drain()
        except ConnectionError:
            self.clients.discard(client)
            client.close()

    async def _pump_stdin(self, client: AttachClient) -> None:
        shim = self._shim_writer
        if shim is None:
            return
        try:
            if client.early_stdin:
                shim.write(client.early_stdin)
            while data := await client.reader.read(64 * 1024):
                shim.write(data)
                await shim.drain()
            # The client half-closed its side: stdin ended.
            if self._stdin_once and shim.can_write_eof():
                shim.write_eof()
        except ConnectionError:
            pass

    async def wait_run_end(self) -> None:
        if self._relay is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._relay)

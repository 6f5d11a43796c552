"""The I/O of an attached container (`run`, `start -a`, `attach`): one select loop, no threads.

Output from the hijacked connection goes to stdout/stderr (demultiplexed when
there is no TTY); stdin goes to the container until EOF, which half-closes
the connection (the engine keeps sending output, MACHINE-NOTES "wire
protocol"); with a TTY the local terminal is raw, ctrl-p ctrl-q detaches and
SIGWINCH becomes POST /containers/{id}/resize, like docker's hijack.go.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.client.sync import Client, HijackedSocket

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


class EscapeScanner:
    """Finds the detach sequence in typed input; a partial match is held back, then replayed if it breaks."""

    def __init__(self, keys: bytes = DEFAULT_DETACH_KEYS) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.matched]:
                self.matched += 1
                if self.matched == len(self.keys):
                    self.matched = 0
                    return bytes(out), True
                continue
            out += self.keys[:self.matched]
            self.matched = 0
            if byte == self.keys[0]:
                self.matched = 1
            else:
                out.append(byte)
        return bytes(out), False


def parse_detach_keys(value: str) -> bytes:
    """docker's `--detach-keys` syntax: `ctrl-p,ctrl-q`, `a`, `ctrl-@`."""
    out = bytearray()
    for typed in value.split(","):
        key = typed.strip().lower()
        if key.startswith("ctrl-") and len(key) == 6:
            char = key[5]
            code = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(char)
            out.append(code if code is not None else ord(char) - ord("a") + 1)
        elif len(key) == 1:
            out.append(ord(key))
        else:
            from engine.cli.context import UsageError

            raise UsageError(f"invalid detach keys ({value}) provided")
    return bytes(out)


class Session:
    """One attached stream.  Not a dataclass: dataclasses imports inspect, ~5 ms of every `berth run`."""

    def __init__(self, sock: HijackedSocket, tty: bool, stdin: bool, detach_keys: bytes = DEFAULT_DETACH_KEYS) -> None:
        self.sock = sock
        self.tty = tty
        self.stdin = stdin
        self.detach_keys = detach_keys

    def pump(self, resize: Callable[[], None] | None = None, winch_fd: int | None = None) -> bool:
        """Copy until the engine closes the stream; True if the user detached instead."""
        from engine.stdcopy import STDERR, FrameDecoder

        sys.stdout.flush()
        sys.stderr.flush()
        # Older engines do not say which: then a TTY stream is raw and anything else is framed.
        framed = self.sock.multiplexed or (not self.tty and not self.sock.content_type)
        decoder = FrameDecoder() if framed else None
        scanner = EscapeScanner(self.detach_keys) if self.tty and self.detach_keys else None
        stdin_fd: int | None = sys.stdin.fileno() if self.stdin else None
        if stdin_fd is None:
            self.sock.close_write()  # nothing to send: tell the engine at once, as the docker CLI does
        sock_fd = self.sock.sock.fileno()
        pending = self.sock.leftover
        self.sock.leftover = b""
        while True:
            if pending:
                chunk, pending = pending, b""
            else:
                watched = [sock_fd] + ([stdin_fd] if stdin_fd is not None else []) + (
                    [winch_fd] if winch_fd is not None else [])
                ready, _, _ = select.select(watched, [], [])
                if winch_fd is not None and winch_fd in ready:
                    from engine.cli.terminal import drain

                    drain(winch_fd)
                    if resize is not None:
                        resize()
                if stdin_fd is not None and stdin_fd in ready:
                    typed = os.read(stdin_fd, 4096)
                    if not typed:
                        stdin_fd = None
                        self.sock.close_write()
                    elif scanner is not None:
                        typed, detached = scanner.feed(typed)
                        if typed:
                            self.sock.send(typed)
                        if detached:
                            return True
                    else:
                        self.sock.send(typed)
                if sock_fd not in ready:
                    continue
                try:
                    chunk = self.sock.recv()
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    return False
            if decoder is None:
                _write_all(1, chunk)
                continue
            for stream, payload in decoder.feed(chunk):
                _write_all(2 if stream == STDERR else 1, payload)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _killer(client: Client, container_id: str) -> Callable[[str], None]:
    from engine.client.errors import ClientError

    def kill(signal_name: str) -> None:
        try:
            client.post(f"/containers/{container_id}/kill", {"signal": signal_name})
        except ClientError as exc:
            sys.stderr.write(f"{exc}\n")  # e.g. it exited meanwhile: say so, the stream ends on its own

    return kill


def resizer(client: Client, path: str, fd: int) -> Callable[[], None]:
    """A callable that tells the engine the local terminal's size (POST `path`: /containers/{id}/resize or
    /exec/{id}/resize)."""
    from engine.cli.terminal import size
    from engine.client.errors import ClientError

    def resize() -> None:
        current = size(fd)
        if current is None:
            return
        try:
            client.post(path, {"h": current[0], "w": current[1]})
        except ClientError:
            pass  # the container may have exited between the signal and the request: nothing to resize

    return resize


START_ERROR_127 = ("executable file not found", "no such file or directory", "system cannot find the file specified")
START_ERROR_126 = ("permission denied", "is a directory")


def start_error_status(message: str) -> int:
    """docker's runStartContainerErr: 127 for a missing command, 126 for one it cannot run, else 125."""
    if any(s in message for s in START_ERROR_127):
        return 127
    if any(s in message for s in START_ERROR_126):
        return 126
    return 125


def run_session(client: Client, sock: HijackedSocket, resize_path: str, *, tty: bool, stdin: bool,
                detach_keys: bytes, kill: Callable[[str], None] | None) -> bool:
    """Pump a hijacked stream with the local terminal set up like docker's: raw mode and SIGWINCH → resize
    with a TTY, signals forwarded through `kill` without one.  True if the user detached."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        winch_fd = None
        resize = None
        if tty and os.isatty(1):
            from engine.cli.terminal import raw_mode, winch_pipe

            resize = resizer(client, resize_path, 1)
            if stdin and os.isatty(0):
                stack.enter_context(raw_mode(0))
            winch_fd = stack.enter_context(winch_pipe())
            resize()  # the process starts at 80x24 or whatever the engine chose: tell it ours
        elif not tty and kill is not None:
            from engine.cli.terminal import forward_signals

            stack.enter_context(forward_signals(kill))
        return Session(sock, tty, stdin, detach_keys).pump(resize, winch_fd)


def attach_and_start(client: Client, container_id: str, *, tty: bool, stdin: bool, auto_remove: bool,
                     start: bool, detach_keys: bytes = DEFAULT_DETACH_KEYS, logs: bool = False) -> int:
    """Attach, ask for the exit status, start (when asked), pump the streams; the container's exit code.

    The order is docker's: attach first (no output is lost), then POST wait
    (its headers arrive at once), then start; `removed` waits out --rm.
    """
    from engine.cli.context import StatusError
    from engine.client.errors import APIError

    sock = client.hijack(f"/containers/{container_id}/attach",
                         {"stream": True, "stdin": stdin, "stdout": True, "stderr": True, "logs": logs})
    try:
        waiter = client.stream("POST", f"/containers/{container_id}/wait",
                               {"condition": "removed" if auto_remove else "next-exit"})
    except BaseException:
        sock.close()
        raise
    try:
        if start:
            try:
                client.post(f"/containers/{container_id}/start")
            except APIError as exc:
                raise StatusError(str(exc), start_error_status(exc.message)) from exc
        detached = run_session(client, sock, f"/containers/{container_id}/resize", tty=tty, stdin=stdin,
                               detach_keys=detach_keys, kill=_killer(client, container_id))
        if detached:
            return 0
        for status in waiter.json_lines():
            error = (status.get("Error") or {}).get("Message")
            if error:
                raise StatusError(f"Error response from daemon: {error}", 125)
            return int(status.get("StatusCode", 0))
        return 0
    finally:
        sock.close()
        waiter.close()

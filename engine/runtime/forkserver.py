"""The fork server: the daemon's fast path to the runtime.

berthd is asyncio and multi-threaded, where fork is unsafe and
unshare(CLONE_NEWUSER)/setns(mnt) fail (MACHINE-NOTES).  So the daemon starts
this small single-threaded process once (``spawn_fork_server``) and asks it,
over a unix SOCK_SEQPACKET socket, to create/start/exec/kill/delete
containers: no interpreter start and no imports per container.  It is a child
subreaper, so every container init and exec'd process ends up its child: it
reaps them and answers ``wait`` requests with their exit codes.

Protocol: one JSON object per message, answered by one JSON object
(``{"ok": true, ...}`` or ``{"ok": false, "error": kind, "message": text}``).
A request may carry three fds (SCM_RIGHTS) used as the process's
stdin/stdout/stderr.  Operations: create, start, state, kill, delete, exec,
wait (parked until the pid exits), pause, resume, update, ping.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from . import errors, lazylog, lifecycle
from .abcs import Callable, Mapping, Sequence
from .create import CreateOptions, create_container
from .exec import exec_process
from .foreground import become_subreaper
from .procinfo import reap_exited
from .state import DEFAULT_ROOT, StateStore
from .status import container_status, oci_state

if TYPE_CHECKING:
    import subprocess

# lazylog, not logging: logging brings threading, whose at-fork handler alone adds ~0.25 ms to the
# start of every container process this server forks (logging's own handler reinitialises its locks).
log = lazylog.getLogger(__name__)

_MAX_MESSAGE = 1 << 20
_STDIO_FDS = 3


def listen_seqpacket(path: str, sock_type: int = socket.SOCK_SEQPACKET) -> socket.socket:
    """A root-only SOCK_SEQPACKET (or `sock_type`) listener at `path` (a stale socket file is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, sock_type)
    # Linux creates the socket file with the socket inode's mode (less the umask): set before bind,
    # the file is never connectable by others, not even between bind and chmod.
    os.fchmod(listener.fileno(), 0o600)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    return listener


class ForkServer:
    def __init__(self, socket_path: str, root: str = DEFAULT_ROOT) -> None:
        self.socket_path = socket_path
        self.store = StateStore(root)
        self.exit_codes: dict[int, int] = {}
        self.waiters: dict[int, list[socket.socket]] = {}
        self.selector = selectors.DefaultSelector()

    def serve(self, ready: Callable[[], None] | None = None) -> None:
        become_subreaper()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
        listener = listen_seqpacket(self.socket_path)
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_r, selectors.EVENT_READ, "sigchld")
        if ready is not None:
            ready()
        log.info("fork server listening on %s", self.socket_path)
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    conn, _ = listener.accept()
                    self.selector.register(conn, selectors.EVENT_READ, "request")
                elif key.data == "sigchld":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                    self._reap_children()
                else:
                    self._serve_one(key.fileobj)  # type: ignore[arg-type]

    def _reap_children(self) -> None:
        for pid, code in reap_exited():
            self._record_exit(pid, code)

    def _record_exit(self, pid: int, code: int) -> None:
        self.exit_codes[pid] = code
        for conn in self.waiters.pop(pid, []):
            self._reply(conn, {"ok": True, "exit_code": code})

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            raw, fds, _, _ = socket.recv_fds(conn, _MAX_MESSAGE, _STDIO_FDS)
        except OSError:
            raw, fds = b"", []
        if not raw:
            self.selector.unregister(conn)
            conn.close()
            return
        try:
            request = json.loads(raw)
            stdio = (fds[0], fds[1], fds[2]) if len(fds) == _STDIO_FDS else None
            reply = self._handle(conn, request, stdio)
        except errors.RuntimeFailure as exc:
            reply = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.exception("fork server request failed")
            reply = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        finally:
            for fd in fds:
                os.close(fd)
        if reply is not None:
            self._reply(conn, reply)

    def _reply(self, conn: socket.socket, reply: Mapping[str, Any]) -> None:
        try:
            conn.send(json.dumps(reply).encode())
        except OSError as exc:
            log.warning("fork server client went away: %s", exc)

    def _handle(self, conn: socket.socket, req: Mapping[str, Any],
                stdio: tuple[int, int, int] | None) -> dict[str, Any] | None:
        op = req.get("op")
        cid = str(req.get("id", ""))
        if op == "ping":
            return {"ok": True}
        if op == "create":
            options = CreateOptions(console_socket=req.get("console_socket"), pid_file=req.get("pid_file"),
                                    stdio=stdio)
            record = create_container(self.store, cid, str(req["bundle"]), options)
            return {"ok": True, "pid": record.pid}
        if op == "start":
            lifecycle.start_container(self.store, cid)
            return {"ok": True}
        if op == "state":
            record = self.store.load(cid)
            return {"ok": True, "state": dict(oci_state(record, container_status(self.store, record)))}
        if op == "kill":
            lifecycle.kill_container(self.store, cid, lifecycle.parse_signal(req.get("signal", "TERM")),
                                     all_processes=bool(req.get("all")))
            return {"ok": True}
        if op == "delete":
            pid = self.store.load(cid).pid
            code = lifecycle.delete_container(self.store, cid, force=bool(req.get("force")))
            if code is not None:  # delete reaped the init itself: tell whoever waits for it
                self._record_exit(pid, 128 - code if code < 0 else code)
            self.exit_codes.pop(pid, None)
            return {"ok": True}
        if op == "exec":
            pid = exec_process(self.store, cid, req["process"], console_socket=req.get("console_socket"),
                               stdio=stdio)
            return {"ok": True, "pid": pid}
        if op == "wait":
            pid = int(req["pid"])
            self._reap_children()
            if pid in self.exit_codes:
                return {"ok": True, "exit_code": self.exit_codes[pid]}
            if not _is_our_child(pid):
                raise errors.InvalidState(f"pid {pid} is not a process of this fork server")
            self.waiters.setdefault(pid, []).append(conn)
            return None  # answered when the pid exits
        if op in ("pause", "resume"):
            (lifecycle.pause_container if op == "pause" else lifecycle.resume_container)(self.store, cid)
            return {"ok": True}
        if op == "update":
            lifecycle.update_container(self.store, cid, req.get("resources", {}))
            return {"ok": True}
        raise ValueError(f"unknown operation {op!r}")


def _is_our_child(pid: int) -> bool:
    from .procinfo import parent_pid

    return parent_pid(pid) == os.getpid()


class ForkServerError(errors.RuntimeFailure):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ForkServerClient:
    """Blocking client; one connection per call, so it is safe from any thread (use asyncio.to_thread)."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def call(self, request: Mapping[str, Any], stdio: Sequence[int] = ()) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.connect(self.socket_path)
            payload = json.dumps(request).encode()
            if stdio:
                socket.send_fds(sock, [payload], list(stdio))
            else:
                sock.send(payload)
            raw = sock.recv(_MAX_MESSAGE)
        if not raw:
            raise ForkServerError("EOF", "fork server closed the connection")
        reply: dict[str, Any] = json.loads(raw)
        if not reply.get("ok"):
            raise ForkServerError(str(reply.get("error")), str(reply.get("message")))
        return reply

    def create(self, container_id: str, bundle: str, stdio: Sequence[int] = (),
               console_socket: str | None = None) -> int:
        reply = self.call({"op": "create", "id": container_id, "bundle": bundle,
                           "console_socket": console_socket}, stdio)
        return int(reply["pid"])

    def start(self, container_id: str) -> None:
        self.call({"op": "start", "id": container_id})

    def state(self, container_id: str) -> dict[str, Any]:
        state: dict[str, Any] = self.call({"op": "state", "id": container_id})["state"]
        return state

    def kill(self, container_id: str, sig: str | int = "TERM", all_processes: bool = False) -> None:
        self.call({"op": "kill", "id": container_id, "signal": sig, "all": all_processes})

    def delete(self, container_id: str, force: bool = False) -> None:
        self.call({"op": "delete", "id": container_id, "force": force})

    def exec(self, container_id: str, process: Mapping[str, Any], stdio: Sequence[int] = (),
             console_socket: str | None = None) -> int:
        reply = self.call({"op": "exec", "id": container_id, "process": dict(process),
                           "console_socket": console_socket}, stdio)
        return int(reply["pid"])

    def wait(self, pid: int) -> int:
        """Block until ``pid`` (a container init or exec'd process) exits; its exit code (128+n if killed)."""
        return int(self.call({"op": "wait", "pid": pid})["exit_code"])


class AsyncForkServerClient:
    """The same calls for asyncio (berthd): a parked ``wait`` costs no thread.

    The request is sent with a plain non-blocking send (one small datagram on
    a fresh SOCK_SEQPACKET connection never blocks); the reply is awaited.
    """

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    async def call(self, request: Mapping[str, Any], stdio: Sequence[int] = ()) -> dict[str, Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, self.socket_path)
            payload = json.dumps(request).encode()
            if stdio:
                socket.send_fds(sock, [payload], list(stdio))
            else:
                sock.send(payload)
            raw = await loop.sock_recv(sock, _MAX_MESSAGE)
        if not raw:
            raise ForkServerError("EOF", "fork server closed the connection")
        reply: dict[str, Any] = json.loads(raw)
        if not reply.get("ok"):
            raise ForkServerError(str(reply.get("error")), str(reply.get("message")))
        return reply

    async def create(self, container_id: str, bundle: str, stdio: Sequence[int] = (),
                     console_socket: str | None = None) -> int:
        reply = await self.call({"op": "create", "id": container_id, "bundle": bundle,
                                 "console_socket": console_socket}, stdio)
        return int(reply["pid"])

    async def start(self, container_id: str) -> None:
        await self.call({"op": "start", "id": container_id})

    async def state(self, container_id: str) -> dict[str, Any]:
        state: dict[str, Any] = (await self.call({"op": "state", "id": container_id}))["state"]
        return state

    async def kill(self, container_id: str, sig: str | int = "TERM", all_processes: bool = False) -> None:
        await self.call({"op": "kill", "id": container_id, "signal": sig, "all": all_processes})

    async def delete(self, container_id: str, force: bool = False) -> None:
        await self.call({"op": "delete", "id": container_id, "force": force})

    async def exec(self, container_id: str, process: Mapping[str, Any], stdio: Sequence[int] = (),
                   console_socket: str | None = None) -> int:
        reply = await self.call({"op": "exec", "id": container_id, "process": dict(process),
                                 "console_socket": console_socket}, stdio)
        return int(reply["pid"])

    async def wait(self, pid: int) -> int:
        return int((await self.call({"op": "wait", "pid": pid}))["exit_code"])


def spawn_fork_server(socket_path: str, root: str = DEFAULT_ROOT,
                      python: str = sys.executable) -> subprocess.Popen[bytes]:
    """Start the server (safe from a threaded daemon: fork+exec) and return once it listens."""
    import subprocess  # the caller's side only: the server itself never imports it (threading, see log)

    proc = subprocess.Popen([python, "-m", "engine.runtime.forkserver", "--socket", socket_path, "--root", root],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.stdout.close()
    if line.strip() != b"ready":
        proc.wait()
        raise errors.RuntimeFailure(f"fork server failed to start (exit {proc.returncode})")
    return proc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth-runtime-forkserver")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def configure_logging() -> None:
        import logging

        logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr)

    # Warnings and errors only unless --debug: `logging` (and threading) is imported at the first one kept.
    lazylog.keep_from(lazylog.DEBUG if args.debug else lazylog.WARNING, configure_logging)
    server = ForkServer(args.socket, args.root)

    def ready() -> None:
        # Our stdout is the spawner's readiness pipe: say so, then give containers /dev/null, not the pipe.
        os.write(1, b"ready\n")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    # Everything imported so far lives as long as the server: out of the collector's sight, so neither
    # the server's collections nor a forked child's touch (and copy) those pages.
    gc.freeze()
    try:
        server.serve(ready)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The per-container supervisor logic: Berth's containerd-shim / conmon.

A `Shim` supervises one container.  It creates the container through the
OCI runtime library (in a single-threaded process: the runtime forks and
unshares), holds the container's stdio, writes the json-file log, relays
attach streams, and records the exit status.  Several `Shim`s can share one
event loop and one `Reaper` (engine/containers/shim_host.py runs many
containers in one process); `run()` below is the one-container process
berthd falls back to.  Either way the process runs in its own session, so
the container outlives a daemon restart: the daemon reconnects to
`shim.sock`, or reads `exit.json` if the container ended meanwhile.

Protocol on `shim.sock`: each connection sends one JSON line.
- `{"op": "attach", "stdin": bool}`: answered `{"ok": true}`, then the
  connection carries stdcopy frames (stream 1 stdout, 2 stderr; a TTY is all
  stream 1) from the shim, and raw stdin bytes to it; a half-close ends stdin.
- `{"op": "resize", "height": h, "width": w}`: TIOCSWINSZ on the pty.
- `{"op": "wait"}`: answered with the exit record once the container ended.
- `{"op": "status"}`: `{"pid": init pid, "running": bool}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import struct
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.containers.json_log import JSONLogWriter, LogOptions, rfc3339_nano
from engine.containers.runtimes import OCIRuntime
from engine.stdcopy import STDERR, STDOUT, encode_frame

log = logging.getLogger("berth-shim")

SHIM_SOCKET = "shim.sock"
EXEC_EXIT_STREAM = 9  # Berth-private stdcopy stream id: the exec's exit status, last on its connection
EXIT_FILE = "exit.json"
CGROUP_FILE = "cgroup.path"  # an external runtime's container: its cgroup, as open_cgroup reopens it
READ_CHUNK = 32 * 1024


@dataclass
class ShimConfig:
    runtime_root: str
    container_id: str
    bundle: str
    workdir: Path
    log_path: Path
    log_opts: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    report_fd: int = -1
    # An external OCI runtime (engine/containers/runtimes.py): its binary and global args; "" = the library.
    oci_runtime: str = ""
    oci_runtime_args: list[str] = field(default_factory=list)


@dataclass
class ExitRecord:
    exit_code: int
    finished_at: str
    oom_killed: bool = False
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ExitCode": self.exit_code, "FinishedAt": self.finished_at, "OOMKilled": self.oom_killed,
                "Error": self.error}


def read_exit_record(workdir: Path) -> ExitRecord | None:
    try:
        raw = json.loads((workdir / EXIT_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return ExitRecord(int(raw["ExitCode"]), str(raw["FinishedAt"]), bool(raw.get("OOMKilled")),
                      str(raw.get("Error", "")))


def read_report(read_fd: int) -> dict[str, Any] | None:
    """The one JSON line a starting shim (or shim host) writes on its report pipe; None if it died first."""
    with os.fdopen(read_fd, "rb") as report:
        line = report.readline()
    try:
        ready: dict[str, Any] = json.loads(line)
    except ValueError:
        return None
    return ready


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class Created:
    pid: int
    cgroup_path: str | None


class CreateFailed(Exception):
    """The runtime's create failed (in the creating child); the message is the runtime's."""


def _start_child(create: Any, reaper: Reaper | None = None) -> tuple[int, int]:
    """Fork a short-lived child of the shim that runs the runtime's `create` (or `exec`).

    Its allocations (the bundle's JSON, the seccomp program, mount and namespace plans) and
    the pages it dirties die with it, instead of staying resident in the shim for the
    container's whole life.  The process it starts is reparented to the shim, a subreaper.
    `create` returns the runtime's record, or a pid.  Returns the child's pid and the pipe its
    one-line answer comes on (`_wait_child`, `_read_child`).  With a `reaper`, the child's own
    exit is the reaper's to collect and forget.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            try:
                record = create()
                out: dict[str, Any] = {"pid": record} if isinstance(record, int) else {
                    "pid": record.pid, "cgroup_path": record.cgroup_path}
            except BaseException as exc:  # everything goes back to the shim, which reports it
                log.exception("create failed")
                out = {"error": str(exc) or type(exc).__name__}
            # One line, read with readline: the init holds this pipe until it execs (at start).
            os.write(write_fd, json.dumps(out).encode() + b"\n")
        finally:
            os._exit(0)
    os.close(write_fd)
    if reaper is not None:
        reaper.ignore(pid)
    return pid, read_fd


def _child_answer(line: bytes) -> Created:
    reply = json.loads(line or b'{"error": "the creating process died without an answer"}')
    if "error" in reply:
        raise CreateFailed(str(reply["error"]))
    return Created(int(reply["pid"]), reply.get("cgroup_path"))


def _wait_child(pid: int, read_fd: int) -> Created:
    """Blocking: before the loop runs (a one-container shim's create), so the child is ours to reap."""
    with os.fdopen(read_fd, "rb") as result:
        line = result.readline()
    os.waitpid(pid, 0)
    return _child_answer(line)


async def _read_child(read_fd: int) -> Created:
    """The answer without blocking the loop (the other containers of a shim host go on meanwhile)."""
    os.set_blocking(read_fd, False)
    line = b""
    try:
        while not line.endswith(b"\n"):
            try:
                chunk = os.read(read_fd, 4096)
            except BlockingIOError:
                await _ready(read_fd, writing=False)
                continue
            if not chunk:
                break
            line += chunk
    finally:
        os.close(read_fd)
    return _child_answer(line)


class Reaper:
    """The process's one SIGCHLD handler: reaps every exited child and hands each to the shim it
    belongs to (its container's init, or one of its execs).  A child nobody claims is just reaped."""

    UNCLAIMED_S = 60.0  # how long an exit nobody claimed is kept for a shim about to learn its pid

    def __init__(self) -> None:
        self.shims: set[Shim] = set()
        self.ignored: set[int] = set()  # creating children: their exits mean nothing
        # pid -> (exit code, when): an init or exec that ended before its shim learnt its pid (its
        # creating child reports the pid while the loop runs on); claimed at once, else dropped.
        self.unclaimed: dict[int, tuple[int, float]] = {}

    def ignore(self, pid: int) -> None:
        self.ignored.add(pid)

    def claim(self, pid: int) -> int | None:
        """The exit code of `pid` if it already ended unclaimed."""
        entry = self.unclaimed.pop(pid, None)
        return None if entry is None else entry[0]

    def reap(self) -> None:
        from engine.runtime.procinfo import reap_exited

        now = time.monotonic()
        for pid, code in reap_exited():
            if pid in self.ignored:
                self.ignored.discard(pid)
                continue
            for shim in list(self.shims):
                try:
                    if shim.child_exited(pid, code):
                        break
                except Exception:  # one container's fault is logged, the others' exits still land
                    log.exception("container %s: handling the exit of pid %d failed", shim.config.container_id,
                                  pid)
                    break
            else:
                self.unclaimed[pid] = (code, now)
        for pid, (_, when) in list(self.unclaimed.items()):
            if now - when > self.UNCLAIMED_S:
                del self.unclaimed[pid]


@contextlib.contextmanager
def private_console_listener(directory: str) -> Iterator[tuple[str, socket.socket]]:
    """The runtime's temporary --console-socket, its file 0600 from the moment it exists.

    Whoever connects first is handed the container's pty (or hands us a pty of its own): bound
    under umask 077 (this process is single-threaded: the umask is back before anything else
    runs), not chmod'ed after the bind.  (Under a long workdir it is bound in a fresh private
    directory instead, which this umask makes 0600: root, the only user of it, searches it all the same.)
    """
    from engine.runtime.foreground import console_listener

    with contextlib.ExitStack() as stack:
        old = os.umask(0o177)
        try:
            path, listener = stack.enter_context(console_listener(directory))
        finally:
            os.umask(old)
        yield path, listener


def ignore_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda: None)  # the containers, not their supervisor, decide when to stop


@dataclass
class ContainerStdio:
    """The shim's ends of the container's stdio, and what the init inherits."""

    stdin_w: int | None = None
    stdout_r: int | None = None
    stderr_r: int | None = None
    master: int | None = None


class Shim:
    def __init__(self, config: ShimConfig, reaper: Reaper) -> None:
        self.config = config
        self.reaper = reaper
        self.stdio = ContainerStdio()
        self.init_pid = 0
        self.cgroup_path: str | None = None
        self.exit: ExitRecord | None = None
        self.writer = JSONLogWriter(config.log_path, LogOptions.from_opts(config.log_opts))
        self.attached: set[asyncio.StreamWriter] = set()
        self.exited = asyncio.Event()
        self.open_outputs = 0
        self.outputs_done = asyncio.Event()
        self.finished = asyncio.Event()  # exit.json written, runtime state gone
        self.exec_exits: dict[int, asyncio.Future[int]] = {}
        self.exec_masters: dict[int, int] = {}  # exec pid -> its pty master, for resize
        self.clients: set[asyncio.Task[None]] = set()
        self.listener: socket.socket | None = None
        self.log_failed = False  # the json-file log could not be written: said once, output still relayed
        reaper.shims.add(self)

    def listen(self) -> None:
        """Bind shim.sock before reporting `created`, so the daemon can connect at once."""
        path = self.config.workdir / SHIM_SOCKET
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Linux gives the socket file the socket inode's mode (less the umask) at bind: made 0600
        # before bind, it is never connectable by anyone else, not even between a bind and a chmod.
        os.fchmod(self.listener.fileno(), 0o600)
        self.listener.bind(str(path))
        self.listener.listen(16)

    # ------------------------------------------------------------ create (single-threaded)
    def create(self) -> None:
        """Blocking, before the loop runs: a one-container shim."""
        with self._creating(None) as (pid, read_fd, created):
            created(_wait_child(pid, read_fd))

    async def create_async(self) -> None:
        """In a running loop shared with other containers (a shim host): the wait does not block it."""
        with self._creating(self.reaper) as (_pid, read_fd, created):
            created(await _read_child(read_fd))

    @contextlib.contextmanager
    def _creating(self, reaper: Reaper | None) -> Iterator[tuple[int, int, Callable[[Created], None]]]:
        """Fork the creating child with the container's stdio ready for it; the caller waits for its
        answer and passes it to the yielded callback."""
        from engine.runtime.create import CreateOptions, create_container
        from engine.runtime.state import StateStore

        store = StateStore(self.config.runtime_root)
        cid, bundle = self.config.container_id, self.config.bundle
        external = self.external_runtime()

        def create(console_socket: str | None) -> Any:
            if external is not None:
                return external.create(cid, bundle, self.config.workdir, console_socket)
            return create_container(store, cid, bundle, CreateOptions(console_socket=console_socket))

        if self.config.tty:
            from engine.runtime.foreground import accept_master

            with private_console_listener(str(self.config.workdir)) as (path, listener):
                pid, read_fd = _start_child(lambda: create(path), reaper)

                def with_master(record: Created) -> None:
                    self.stdio.master = accept_master(listener)  # sent before the child answered
                    os.set_blocking(self.stdio.master, False)
                    self._created(record)

                yield pid, read_fd, with_master
        else:
            pid, read_fd = self._start_with_pipes(lambda: create(None), reaper)
            yield pid, read_fd, self._created

    def external_runtime(self) -> OCIRuntime | None:
        if not self.config.oci_runtime:
            return None
        return OCIRuntime(self.config.oci_runtime, self.config.oci_runtime_args, Path(self.config.runtime_root))

    def _created(self, record: Created) -> None:
        self.init_pid = record.pid
        self.cgroup_path = record.cgroup_path
        if self.config.oci_runtime and record.cgroup_path:  # the daemon's stats read it (no library state)
            _write_atomic(self.config.workdir / CGROUP_FILE, record.cgroup_path.encode())
        code = self.reaper.claim(record.pid)
        if code is not None:  # it ended before we knew its pid
            self.child_exited(record.pid, code)

    def _start_with_pipes(self, create: Any, reaper: Reaper | None) -> tuple[int, int]:
        stdin_r, stdin_w = os.pipe() if self.config.open_stdin else (os.open(os.devnull, os.O_RDONLY), -1)
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        saved = [os.dup(fd) for fd in (0, 1, 2)]
        try:
            # The init inherits fds 0-2 (runc's detached mode): put the container's pipes there.
            for fd, target in ((stdin_r, 0), (stdout_w, 1), (stderr_w, 2)):
                os.dup2(fd, target)
            return _start_child(create, reaper)
        finally:
            for fd, target in zip(saved, (0, 1, 2), strict=True):
                os.dup2(fd, target)
                os.close(fd)
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
            self.stdio.stdin_w = stdin_w if stdin_w >= 0 else None
            self.stdio.stdout_r, self.stdio.stderr_r = stdout_r, stderr_r
            for fd in (stdout_r, stderr_r, *([stdin_w] if stdin_w >= 0 else [])):
                os.set_blocking(fd, False)

    # ------------------------------------------------------------ serving (asyncio, still one thread)
    def reap(self) -> None:
        self.reaper.reap()

    async def serve(self) -> None:
        """Relay and serve until the container ended and its exit is recorded (SIGCHLD goes to the reaper)."""
        loop = asyncio.get_running_loop()
        outputs = [(self.stdio.master, "stdout")] if self.stdio.master is not None else [
            (self.stdio.stdout_r, "stdout"), (self.stdio.stderr_r, "stderr")]
        for fd, stream in outputs:
            assert fd is not None
            self.open_outputs += 1
            loop.add_reader(fd, self._on_output, fd, stream)
        assert self.listener is not None
        listener = self.listener
        listener.setblocking(False)
        loop.add_reader(listener.fileno(), self._accept_pending)
        try:
            self.reap()  # the init may have died before the handler existed
            await self.exited.wait()
            await self.outputs_done.wait()
            self._finish()
            self.finished.set()
            # Stop listening without dropping a client that connected just before: the path goes first
            # (a new client is refused and reads exit.json), then every connection already queued is taken
            # (a `wait` sent as the container died gets its exit code, not a reset), then the socket closes.
            with contextlib.suppress(FileNotFoundError):
                (self.config.workdir / SHIM_SOCKET).unlink()
            loop.remove_reader(listener.fileno())
            self._accept_pending()
            listener.close()
            # Let in-flight `wait` replies and attach streams finish before the process ends.
            if self.clients:
                await asyncio.wait(self.clients, timeout=10)
        finally:
            if listener.fileno() >= 0:
                loop.remove_reader(listener.fileno())
            with contextlib.suppress(FileNotFoundError):
                (self.config.workdir / SHIM_SOCKET).unlink()
            self.release()

    def _accept_pending(self) -> None:
        """Accept every queued connection; each one's task is in self.clients from this moment."""
        assert self.listener is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the rest wait for the next readiness
                log.warning("container %s: cannot accept a shim client: %s", self.config.container_id, exc)
                return
            self.clients.add(loop.create_task(self._serve_connection(conn)))

    async def _serve_connection(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn)
        except OSError as exc:  # this client's loss only: said, not raised into a task nobody awaits
            conn.close()
            log.info("container %s: shim client lost at connect: %s", self.config.container_id, exc)
            task = asyncio.current_task()
            if task is not None:
                self.clients.discard(task)
            return
        await self._on_client(reader, writer)

    def release(self) -> None:
        """Give back what this container holds in a process that outlives it (a shim host)."""
        self.reaper.shims.discard(self)
        loop = asyncio.get_running_loop()
        for fd in (self.stdio.stdout_r, self.stdio.stderr_r, self.stdio.master, self.stdio.stdin_w):
            if fd is not None:
                loop.remove_reader(fd)
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.stdio = ContainerStdio()
        if self.listener is not None:
            self.listener.close()
        with contextlib.suppress(Exception):
            self.writer.close()

    def _on_output(self, fd: int, stream: str) -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO from a pty master once the last slave holder is gone
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            if fd == self.stdio.master:
                self.stdio.master = None
            elif fd == self.stdio.stdout_r:
                self.stdio.stdout_r = None
            elif fd == self.stdio.stderr_r:
                self.stdio.stderr_r = None
            self.open_outputs -= 1
            if self.open_outputs == 0:
                self.outputs_done.set()
            return
        if not self.log_failed:
            try:
                self.writer.write(stream, data)
            except Exception:  # e.g. its log dir removed, a full disk: attach streams still get the output
                log.exception("container %s: cannot write its log; output is still relayed", self.config.container_id)
                self.log_failed = True
        frame = encode_frame(STDOUT if stream == "stdout" else STDERR, data)
        for writer in list(self.attached):
            if writer.is_closing():
                self.attached.discard(writer)
                continue
            writer.write(frame)

    def child_exited(self, pid: int, code: int) -> bool:
        """The reaper reaped `pid`: record it if it is ours (True), else leave it to the next shim."""
        if pid in self.exec_exits:
            future = self.exec_exits.pop(pid)
            if not future.done():
                future.set_result(code)
            return True
        if pid == self.init_pid and self.exit is None:
            self.exit = ExitRecord(code, rfc3339_nano(time.time_ns()), oom_killed=self._oom_killed())
            log.info("container %s exited with %d", self.config.container_id, self.exit.exit_code)
            self.exited.set()
            return True
        return False

    def _oom_killed(self) -> bool:
        if not self.cgroup_path:
            return False
        try:
            from engine.runtime.cgroups import open_cgroup

            return open_cgroup(self.cgroup_path, self.config.container_id).oom_kills() > 0
        except Exception:  # a cgroup that is already gone cannot tell; not worth failing the exit for
            log.exception("cannot read OOM kills of %s", self.cgroup_path)
            return False

    def _finish(self) -> None:
        from engine.runtime.lifecycle import delete_container
        from engine.runtime.state import StateStore

        assert self.exit is not None
        external = self.external_runtime()
        try:
            if external is not None:
                external.delete(self.config.container_id)
            else:
                delete_container(StateStore(self.config.runtime_root), self.config.container_id, force=True)
        except Exception as exc:
            log.exception("runtime delete of %s failed", self.config.container_id)
            self.exit.error = f"cleanup after exit failed: {exc}"
        self.writer.close()
        _write_atomic(self.config.workdir / EXIT_FILE, json.dumps(self.exit.to_json()).encode())

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.clients.add(task)
        try:
            line = await reader.readline()
            request = json.loads(line or b"{}")
            op = request.get("op")
            if op == "attach":
                await self._attach(reader, writer, bool(request.get("stdin")))
                return
            if op == "exec":
                await ExecSession(self, reader, writer, request).run()
                return
            if op == "wait":
                await self.finished.wait()
                assert self.exit is not None
                reply: dict[str, Any] = self.exit.to_json()
            elif op == "resize":
                master = self.exec_masters.get(int(request.get("pid", 0)), self.stdio.master)
                reply = self._resize(master, int(request.get("height", 0)), int(request.get("width", 0)))
            elif op == "status":
                reply = {"pid": self.init_pid, "running": self.exit is None}
            else:
                reply = {"error": f"unknown shim operation {op!r}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, ValueError) as exc:
            log.info("container %s: shim client error: %s", self.config.container_id, exc)
        except Exception:  # a fault in one request is this request's, not the process's
            log.exception("container %s: shim request failed", self.config.container_id)
        finally:
            self.clients.discard(task)
            if writer not in self.attached:
                writer.close()

    def _resize(self, master: int | None, height: int, width: int) -> dict[str, Any]:
        if master is None:
            return {"error": "the container has no TTY"}
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        return {"ok": True}

    async def _attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stdin: bool) -> None:
        writer.write(b'{"ok":true}\n')
        await writer.drain()
        self.attached.add(writer)
        pump = asyncio.ensure_future(self._pump_stdin(reader, stdin))
        try:
            # Output flows until the container's stdio closes, whatever the client does with its side.
            await self.outputs_done.wait()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            self.attached.discard(writer)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()

    async def _pump_stdin(self, reader: asyncio.StreamReader, stdin: bool) -> None:
        target = self.stdio.master if self.stdio.master is not None else self.stdio.stdin_w
        try:
            while data := await reader.read(READ_CHUNK):
                if stdin and target is not None:
                    await write_all(target, data)
        except ConnectionError:
            return
        # The client half-closed: its stdin ended.
        if stdin and self.stdio.stdin_w is not None and self.config.stdin_once:
            os.close(self.stdio.stdin_w)
            self.stdio.stdin_w = None


class ExecSession:
    """One `docker exec`: a process joined to the container, its stdio relayed on one connection.

    Frames out are stdcopy (1 stdout, 2 stderr; all 1 for a TTY); the last
    frame, on stream EXEC_EXIT_STREAM, carries `{"ExitCode": n}` as JSON.
    """

    def __init__(self, shim: Shim, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 request: dict[str, Any]) -> None:
        self.shim = shim
        self.reader = reader
        self.writer = writer
        self.process: dict[str, Any] = dict(request["process"])
        self.want_stdin = bool(request.get("stdin"))
        self.master: int | None = None
        self.stdin_w: int | None = None
        self.outputs: list[tuple[int, int]] = []  # (fd, stream)

    async def _spawn(self) -> int:
        from engine.runtime.exec import exec_process
        from engine.runtime.state import StateStore

        store = StateStore(self.shim.config.runtime_root)
        cid = self.shim.config.container_id
        reaper = self.shim.reaper
        external = self.shim.external_runtime()

        def spawn(console_socket: str | None = None, stdio: tuple[int, int, int] | None = None) -> int:
            if external is not None:
                return external.exec(cid, self.process, self.shim.config.workdir, console_socket, stdio)
            return exec_process(store, cid, self.process, console_socket=console_socket, stdio=stdio)

        if self.process.get("terminal"):
            from engine.runtime.foreground import accept_master

            with private_console_listener(str(self.shim.config.workdir)) as (path, listener):
                _child, read_fd = _start_child(lambda: spawn(console_socket=path), reaper)
                pid = (await _read_child(read_fd)).pid
                self.master = accept_master(listener)
            os.set_blocking(self.master, False)
            self.stdin_w = self.master if self.want_stdin else None
            self.outputs = [(self.master, STDOUT)]
            return pid
        stdin_r, stdin_w = os.pipe() if self.want_stdin else (os.open(os.devnull, os.O_RDONLY), -1)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            try:
                _child, read_fd = _start_child(lambda: spawn(stdio=(stdin_r, out_w, err_w)), reaper)
            finally:
                for fd in (stdin_r, out_w, err_w):  # the child has its copies
                    os.close(fd)
            pid = (await _read_child(read_fd)).pid
        except BaseException:
            for fd in (stdin_w, out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            raise
        self.stdin_w = stdin_w if stdin_w >= 0 else None
        for fd in (out_r, err_r, *([stdin_w] if stdin_w >= 0 else [])):
            os.set_blocking(fd, False)
        self.outputs = [(out_r, STDOUT), (err_r, STDERR)]
        return pid

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            pid = await self._spawn()
        except Exception as exc:
            self.writer.write(json.dumps({"error": str(exc)}).encode() + b"\n")
            await self.writer.drain()
            self.writer.close()
            return
        exited: asyncio.Future[int] = loop.create_future()
        self.shim.exec_exits[pid] = exited
        if self.master is not None:
            self.shim.exec_masters[pid] = self.master
        self.shim.reap()  # it may be gone already
        code = self.shim.reaper.claim(pid)
        if code is not None:  # gone before we knew its pid
            self.shim.child_exited(pid, code)
        self.writer.write(json.dumps({"ok": True, "pid": pid}).encode() + b"\n")
        await self.writer.drain()
        outputs_done = asyncio.Event()
        open_outputs = len(self.outputs)

        def on_output(fd: int, stream: int) -> None:
            nonlocal open_outputs
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self.writer.write(encode_frame(stream, data))
                return
            loop.remove_reader(fd)
            if fd != self.master:  # the master is closed once, at the end
                os.close(fd)
            open_outputs -= 1
            if open_outputs == 0:
                outputs_done.set()

        for fd, stream in self.outputs:
            loop.add_reader(fd, on_output, fd, stream)
        pump = asyncio.ensure_future(self._pump_stdin())
        try:
            code = await exited
            await outputs_done.wait()
            self.writer.write(encode_frame(EXEC_EXIT_STREAM, json.dumps({"ExitCode": code}).encode()))
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            if self.master is not None:
                self.shim.exec_masters.pop(pid, None)
                with contextlib.suppress(OSError):
                    os.close(self.master)
            elif self.stdin_w is not None:
                with contextlib.suppress(OSError):
                    os.close(self.stdin_w)
            self.writer.close()

    async def _pump_stdin(self) -> None:
        try:
            while data := await self.reader.read(READ_CHUNK):
                if self.stdin_w is not None:
                    await write_all(self.stdin_w, data)
        except ConnectionError:
            return
        if self.stdin_w is not None and self.master is None:
            os.close(self.stdin_w)  # the client's stdin ended: so does the process's
            self.stdin_w = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _ready(fd: int, writing: bool) -> None:
    """Until the loop's selector says `fd` can be written (or read)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    (loop.add_writer if writing else loop.add_reader)(fd, _resolve, ready)
    try:
        await ready
    finally:
        (loop.remove_writer if writing else loop.remove_reader)(fd)


async def write_all(fd: int, data: bytes) -> None:
    """Write to a non-blocking stdin pipe or pty master, waiting on the loop while it is full.

    Never blocks the loop: a container that does not read its stdin holds up only the client
    feeding it (which stops being read), not the other containers of a shim host.
    """
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await _ready(fd, writing=True)
            continue
        except (BrokenPipeError, OSError):  # the reader is gone (EPIPE), or the pty hung up (EIO)
            return
        view = view[written:]


def parse_args(argv: list[str]) -> ShimConfig:
    p = argparse.ArgumentParser(prog="berth-shim")
    p.add_argument("--runtime-root", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--log-path", required=True, type=Path)
    p.add_argument("--log-opts", default="{}")
    p.add_argument("--tty", action="store_true")
    p.add_argument("--open-stdin", action="store_true")
    p.add_argument("--stdin-once", action="store_true")
    p.add_argument("--report-fd", type=int, default=-1)  # -1: adopted by a shim host, which answers itself
    p.add_argument("--oci-runtime", default="")  # an external runtime's binary (runc's CLI); none: the library
    p.add_argument("--oci-runtime-args", default="[]")
    a = p.parse_args(argv)
    return ShimConfig(a.runtime_root, a.id, a.bundle, a.workdir, a.log_path, json.loads(a.log_opts), a.tty,
                      a.open_stdin, a.stdin_once, a.report_fd, a.oci_runtime, json.loads(a.oci_runtime_args))


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv))


def run(config: ShimConfig) -> int:
    """The shim's life, from a parsed config (the zygote parses before it forks: engine/containers/zygote.py)."""
    logging.basicConfig(filename=str(config.workdir / "shim.log"), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from engine.runtime.foreground import become_subreaper

    if os.getsid(0) != os.getpid():
        os.setsid()  # our own session: a daemon restart (or its terminal closing) must not reach us
    become_subreaper()
    report = os.fdopen(config.report_fd, "wb")
    shim = Shim(config, Reaper())
    try:
        shim.listen()
        shim.create()
    except Exception as exc:
        log.exception("create failed")
        report.write(json.dumps({"error": str(exc), "kind": type(exc).__name__}).encode() + b"\n")
        report.close()
        return 1
    report.write(json.dumps({"pid": shim.init_pid, "shim_pid": os.getpid()}).encode() + b"\n")
    report.close()
    asyncio.run(_serve_alone(shim))
    return 0


async def _serve_alone(shim: Shim) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGCHLD, shim.reap)
    ignore_stop_signals(loop)
    await shim.serve()


if __name__ == "__main__":
    sys.exit(main())

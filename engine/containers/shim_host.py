"""The shared shim host: one supervisor process for many containers (issue #5's per-container memory).

A per-container shim is a whole Python process: even forked from the
pre-imported zygote, CPython's reference counting writes into every page it
touches, so ~5 MiB of each shim's pages turn private.  The host runs the same
`Shim` logic (engine/containers/shim.py) for many containers in one event loop
and one process, so a container adds only its own objects and buffers.

What berthd sees per container is unchanged: `shim.sock` (attach, exec,
resize, wait, status), `exit.json`, the json-file log.  Only the start
differs: berthd asks a host to *adopt* a container over the host's control
socket (`<exec-root>/shimhosts/<name>.sock`) instead of forking a shim.

Lifetime: a host runs in its own session (double-forked by the zygote, or
exec'd with a new session), as a child subreaper: container inits and exec'd
processes are reparented to it, and it records their real exit codes.  It
outlives berthd; a restarted berthd finds it by its control socket and gives
it new containers until it is full.  It exits once it supervises nothing and
either berthd has let go of it (no control connection) or it is retired: it
adopts at most `--max-containers` containers in its life (0: no limit), which
bounds how many containers one host's death can take down.

The cost, written down in docs/ARCHITECTURE.md: if the host process itself
dies (kill -9, OOM killer, a bug in the interpreter), all its containers lose
their stdio relay and their exit status at once; berthd then records each as
exited 255 "supervisor disappeared" and ends them, as it does for a killed
per-container shim.  A Python exception while handling one container is caught
and logged for that container only.

Control protocol (JSON lines on a stream socket, any number per connection):
- `{"op": "hello"}` → `{"pid": host pid, "containers": n, "accepting": bool}`
- `{"op": "adopt", "argv": [shim arguments]}` → the shim's report:
  `{"pid": init pid, "shim_pid": host pid, "retired": bool}` (retired: that was
  its last; berthd lets go of it) or `{"error": ..., "kind": ...}` (`kind`
  "HostFull" when the host is retired: nothing was done).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.containers.shim import Reaper, Shim, ignore_stop_signals, parse_args, read_report

if TYPE_CHECKING:
    from engine.containers.zygote import ZygoteClient

log = logging.getLogger("berth-shim-host")

HOSTS_DIR = "shimhosts"
HOST_FULL = "HostFull"


class ShimHost:
    def __init__(self, socket_path: str, max_containers: int) -> None:
        self.socket_path = socket_path
        self.max_containers = max_containers
        self.reaper = Reaper()
        self.shims: dict[str, asyncio.Task[None]] = {}  # container id -> its supervising task
        self.creating: set[str] = set()  # container ids being created right now
        self.adopted = 0
        self.controls = 0  # open control connections (berthd holds one while it runs)
        self.control_tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.AbstractServer | None = None
        self.done = asyncio.Event()  # set once, when the host decided to exit: from then on it adopts nothing

    @property
    def retired(self) -> bool:
        # Creates in flight count: two adopts at once never take the host past its bound.
        return 0 < self.max_containers <= self.adopted + len(self.creating)

    def _maybe_exit(self) -> None:
        if self.done.is_set() or self.shims or self.creating or not (self.retired or self.controls == 0):
            return
        # Decided, in this very step: the socket path goes (a berthd looking for a host no longer
        # finds this one), and a control connection already made but not yet served is answered
        # "not accepting" / HostFull (berthd tries the next host), never served and then dropped
        # mid-request by the exit.
        self.done.set()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    async def serve(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGCHLD, self.reaper.reap)
        ignore_stop_signals(loop)
        self.server = await asyncio.start_unix_server(self._on_control, sock=listener)
        await self.done.wait()
        # Connections made before the decision get their refusal (they hang up on it) before the end.
        if self.control_tasks:
            await asyncio.wait(self.control_tasks, timeout=5)
        self.server.close()  # one still in the listen backlog is reset: its hello fails, berthd goes on
        log.info("shim host %d: no containers left, exiting", os.getpid())

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.control_tasks.add(task)
        self.controls += 1
        try:
            while line := await reader.readline():
                request = json.loads(line)
                writer.write(json.dumps(await self._handle(request)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError) as exc:
            log.info("control connection: %s", exc)
        finally:
            writer.close()
            self.controls -= 1
            self.control_tasks.discard(task)
            self._maybe_exit()

    async def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "hello":
            return {"pid": os.getpid(), "containers": len(self.shims),
                    "accepting": not (self.retired or self.done.is_set())}
        if op == "adopt":
            if self.retired or self.done.is_set():
                return {"error": f"shim host {os.getpid()} is full", "kind": HOST_FULL}
            try:
                return await self._adopt([str(a) for a in request.get("argv") or []])
            except Exception as exc:  # a bad request fails that request only
                log.exception("adopt failed")
                return {"error": str(exc), "kind": type(exc).__name__}
        return {"error": f"unknown shim host operation {op!r}"}

    async def _adopt(self, argv: list[str]) -> dict[str, Any]:
        try:
            config = parse_args(argv)
        except SystemExit:  # argparse's way to refuse; the host lives on
            raise ValueError(f"bad shim arguments: {argv}") from None
        if config.container_id in self.shims or config.container_id in self.creating:
            raise ValueError(f"container {config.container_id} is already supervised here")
        shim = Shim(config, self.reaper)
        self.creating.add(config.container_id)
        try:
            # The runtime runs in a child (shim._start_child); its init is reparented to us, the
            # subreaper.  Waiting for it does not hold up the other containers.
            shim.listen()
            await shim.create_async()
        except Exception as exc:
            log.exception("container %s: create failed", config.container_id)
            shim.release()
            self.creating.discard(config.container_id)
            self._maybe_exit()  # e.g. a retired host's last create, or berthd gone meanwhile
            return {"error": str(exc), "kind": type(exc).__name__}
        finally:
            self.creating.discard(config.container_id)
        self.adopted += 1
        self.shims[config.container_id] = asyncio.ensure_future(self._supervise(shim))
        log.info("container %s adopted (init %d); %d supervised", config.container_id, shim.init_pid,
                 len(self.shims))
        return {"pid": shim.init_pid, "shim_pid": os.getpid(), "retired": self.retired}

    async def _supervise(self, shim: Shim) -> None:
        cid = shim.config.container_id
        try:
            await shim.serve()
        except Exception:
            # This container loses its supervisor (berthd records it as exited 255 and ends it, as
            # for a killed shim); every other container here goes on.
            log.exception("container %s: supervision failed", cid)
            with contextlib.suppress(Exception):
                shim.release()
        finally:
            self.shims.pop(cid, None)
            self._maybe_exit()


def run(socket_path: str, max_containers: int, report_fd: int) -> int:
    """The host's life: listen, say so on `report_fd` (`{"pid": n}` or `{"error": ...}`), serve."""
    logging.basicConfig(filename=socket_path.removesuffix(".sock") + ".log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from engine.runtime.foreground import become_subreaper

    if os.getsid(0) != os.getpid():
        os.setsid()  # our own session: a daemon restart (or its terminal closing) must not reach us
    become_subreaper()
    import faulthandler

    # `kill -USR1 <host>` prints every thread's stack to its stderr (shimhosts/host.stderr): a stuck
    # host stalls all its containers, and this shows where.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    from engine.runtime.forkserver import listen_seqpacket

    with os.fdopen(report_fd, "wb") as report:
        try:
            listener = listen_seqpacket(socket_path, socket.SOCK_STREAM)
        except OSError as exc:
            log.exception("cannot listen on %s", socket_path)
            report.write(json.dumps({"error": str(exc)}).encode() + b"\n")
            return 1
        report.write(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    asyncio.run(ShimHost(socket_path, max_containers).serve(listener))
    return 0


def host_argv(socket_path: str, max_containers: int) -> list[str]:
    return ["--socket", socket_path, "--max-containers", str(max_containers)]


def parse_host_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berth-shim-host")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--max-containers", type=int, default=0)
    parser.add_argument("--report-fd", type=int, default=-1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_host_args(sys.argv[1:] if argv is None else argv)
    return run(args.socket, args.max_containers, args.report_fd)


# ---------------------------------------------------------------------------------- berthd's side
class HostUnavailable(OSError):
    """No shim host could be reached or started; nothing was asked (the caller may start a shim instead)."""


class HostGone(OSError):
    """The request could not be sent: the host had died (kill -9, OOM) before it; nothing was asked."""


HELLO_TIMEOUT_S = 10.0  # a host that does not answer hello by then is stuck (SIGSTOP, a wedged loop): not used


class HostClient:
    """berthd's side: adopt containers into a running host, or start one (through the zygote when it can).

    Holds one control connection to its current host: while it is open, an idle host waits for
    the next container instead of exiting.  Used from worker threads: one request at a time.
    """

    def __init__(self, exec_root: Path, max_containers: int, zygote: ZygoteClient | None) -> None:
        self.dir = exec_root / HOSTS_DIR
        self.max_containers = max_containers
        self.zygote = zygote
        self.lock = threading.Lock()
        self.conn: socket.socket | None = None
        self.stream: Any = None  # the connection's buffered reader
        self.stuck: set[Path] = set()  # hosts that did not answer hello: not asked again by this berthd

    def adopt(self, argv: list[str]) -> dict[str, Any]:
        """The shim report for a new container in a host: `{"pid", "shim_pid"}` or `{"error", "kind"}`.

        HostUnavailable: no host could be reached or started; any other OSError: the request was
        sent and the host went away (the container may exist half-made: the caller cleans up).
        """
        with self.lock:
            for _ in range(3):  # a host found full or dead is let go; the next one is tried
                self._ensure_connected()
                try:
                    reply = self._request({"op": "adopt", "argv": argv})
                except HostGone as exc:
                    # The host we held a connection to died since the last container (its containers
                    # are recorded 255 by their monitors): this one goes to a live host.
                    log.warning("shim host gone (%s): trying another", exc)
                    continue
                if reply.get("retired"):
                    self._disconnect()  # its last container: it exits after it, the next goes to a new host
                if reply.get("kind") != HOST_FULL:
                    return reply
                self._disconnect()
            raise HostUnavailable("every shim host refused the container")

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.conn is not None
        try:
            # A dead peer is known here: unix stream sockets fail the send (EPIPE) once it is gone.
            self.conn.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            self._disconnect()
            raise HostGone(str(exc)) from exc
        try:
            line = self.stream.readline()
        except OSError:
            self._disconnect()
            raise
        if not line:
            self._disconnect()
            raise ConnectionError("the shim host closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _ensure_connected(self) -> None:
        if self.conn is not None:
            return
        # A host an earlier berthd started (it outlives us): reuse it while it accepts containers.
        for path in sorted(self.dir.glob("*.sock")):
            if path not in self.stuck and self._connect(path):
                return
        self._connect(self._start_host(), must=True)

    def _connect(self, path: Path, must: bool = False) -> bool:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bounded: a stale socket of a dead host refuses at once, but a live host that is stuck
        # would hold every container start (they wait on this lock) for ever.
        conn.settimeout(HELLO_TIMEOUT_S)
        try:
            conn.connect(str(path))
            self.conn, self.stream = conn, conn.makefile("rb")
            hello = self._request({"op": "hello"})
        except OSError as exc:
            self._disconnect()
            conn.close()
            if must:
                raise HostUnavailable(f"cannot reach the new shim host at {path}: {exc}") from exc
            if isinstance(exc, ConnectionRefusedError):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # its host is gone (killed: nothing removed the socket)
            elif isinstance(exc, TimeoutError):
                log.warning("shim host %s does not answer: not used", path.name)
                self.stuck.add(path)
            return False
        conn.settimeout(None)  # an adopt waits for the container's create, however long its hooks take
        if not hello.get("accepting"):
            self._disconnect()
            return False
        log.info("using shim host %s (pid %s, %s containers)", path.name, hello.get("pid"), hello.get("containers"))
        return True

    def _disconnect(self) -> None:
        if self.conn is not None:
            self.stream.close()
            self.conn.close()
        self.conn = self.stream = None

    def _start_host(self) -> Path:
        try:
            self.dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise HostUnavailable(f"cannot make {self.dir}: {exc}") from exc
        path = self.dir / f"h{secrets.token_hex(4)}.sock"
        read_fd, write_fd = os.pipe()
        try:
            with open(self.dir / "host.stderr", "ab") as stderr:
                argv = host_argv(str(path), self.max_containers)
                try:
                    if self.zygote is None:
                        raise OSError("no shim zygote")
                    # Forked from the pre-imported zygote: no import time, its pages shared while it lives.
                    self.zygote.fork_host(argv, write_fd, stderr.fileno())
                except OSError as exc:
                    log.info("shim host not forked from the zygote (%s): exec'd", exc)
                    proc = subprocess.Popen([sys.executable, "-m", "engine.containers.shim_host", *argv,
                                             "--report-fd", str(write_fd)], pass_fds=(write_fd,),
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                            start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]))
                    # It stays our child until it exits (it may outlive us): reap it without blocking.
                    threading.Thread(target=proc.wait, name=f"reap-shim-host-{proc.pid}", daemon=True).start()
        except OSError as exc:
            os.close(read_fd)
            raise HostUnavailable(f"cannot start a shim host: {exc}") from exc
        finally:
            os.close(write_fd)
        ready = read_report(read_fd)
        if ready is None:
            raise HostUnavailable("the shim host died before it listened")
        if "error" in ready:
            raise HostUnavailable(f"the shim host could not start: {ready['error']}")
        log.info("started shim host %s (pid %s)", path.name, ready.get("pid"))
        return path

    def close(self) -> None:
        """berthd's end: let go of the host (an idle one exits; one with containers keeps them)."""
        with self.lock:
            self._disconnect()


if __name__ == "__main__":
    sys.exit(main())

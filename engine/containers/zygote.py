"""The shim zygote: one pre-imported, single-threaded process that forks every container's shim.

A shim started as `python -m engine.containers.shim` pays for its own
interpreter and imports: ~15 MiB of private pages per container.  berthd
instead starts this process once; it imports everything a shim runs, moves
those objects out of the garbage collector's reach (`gc.freeze()`, so
collections in the shims do not write to, and so copy, the shared pages) and
then forks a shim per request.  The shims share the interpreter's and the
modules' pages copy-on-write with the zygote and with each other, and PSS
divides shared pages among their users.

Each shim is forked twice (the zygote's child starts a new session and exits
at once), so it is nobody's child but init's: it outlives the zygote and
berthd, exactly like a shim started by exec.  The zygote exits when berthd
does (EOF on its stdin); the shims keep running.

Protocol on the SOCK_SEQPACKET socket: one JSON message
`{"argv": [shim arguments]}` (or `{"host": [shim host arguments]}` for a
shared shim host, engine/containers/shim_host.py) with two fds (SCM_RIGHTS):
the report pipe (passed as `--report-fd`) and its stderr.  Answer: `{"ok": true,
"pid": <the intermediate child's pid>}` or `{"ok": false, "message": ...}`;
the shim itself reports on the pipe, as it does when exec'd.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("berth-zygote")

SOCKET_NAME = "shim-zygote.sock"
_MAX_MESSAGE = 1 << 16
_FDS = 2


def _preload() -> None:
    """Import what a shim runs, then freeze: these pages stay shared with every shim."""
    import asyncio
    import asyncio.unix_events  # noqa: F401

    import engine.containers.shim
    import engine.containers.shim_host
    import engine.runtime.cgroups
    import engine.runtime.create
    import engine.runtime.exec
    import engine.runtime.foreground
    import engine.runtime.lifecycle
    import engine.runtime.procinfo
    import engine.runtime.state  # noqa: F401
    from engine.containers.oci_spec import capabilities
    from engine.runtime.seccomp import compile_seccomp, default_seccomp

    # What `create` would otherwise import, parse and compile in every shim: the default
    # profile's BPF lands in the seccomp module's memory cache, shared by every shim.
    compile_seccomp(default_seccomp(capabilities({})))
    import hashlib  # noqa: F401
    import random  # noqa: F401
    import shutil  # noqa: F401
    import tempfile  # noqa: F401

    with contextlib.suppress(ImportError):
        import setproctitle  # noqa: F401
    _warm_up()

    gc.collect()
    gc.freeze()


def _warm_up() -> None:
    """Run once what every shim runs first, so the caches and lazy state it fills are shared too:
    argparse's and re's compiled patterns, asyncio's policy and a unix server on a loop."""
    import asyncio
    import tempfile

    from engine.containers import shim

    shim.parse_args(["--runtime-root", "/", "--id", "x", "--bundle", "/", "--workdir", "/", "--log-path", "/",
                     "--report-fd", "0"])

    async def serve_once(path: str) -> None:
        server = await asyncio.start_unix_server(lambda r, w: None, path)
        server.close()
        await server.wait_closed()

    with tempfile.TemporaryDirectory(prefix="berth-zygote-") as tmp:
        asyncio.run(serve_once(os.path.join(tmp, "s")))


def _run_shim(target: Callable[[int], int], title: list[str], report_fd: int, stderr_fd: int) -> None:
    """In the grandchild: become the shim (or shim host) `target` runs, given its report fd.  Never returns."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(stderr_fd, 2)
        report = os.dup2(report_fd, 3, inheritable=False)
        os.closerange(4, 65536)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in any Python process
        logging.root.handlers.clear()  # the shim configures its own log file
        _set_title(title)
        code = target(report)
    except BaseException:  # the shim's own errors are logged by it; this is the last resort
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _parse(argv: list[str], host: bool) -> Callable[[int], int]:
    """What the forked process runs, given its report fd; argv parsed here, before the fork."""
    from dataclasses import replace

    from engine.containers import shim, shim_host

    try:
        if host:
            args = shim_host.parse_host_args(argv)
            return lambda report: shim_host.run(args.socket, args.max_containers, report)
        config = shim.parse_args(argv)
    except SystemExit:  # argparse's way to refuse; the zygote lives on
        raise ValueError(f"bad shim arguments: {argv}") from None
    return lambda report: shim.run(replace(config, report_fd=report))


def _set_title(argv: list[str]) -> None:
    """`ps` shows which container a shim serves, not the zygote's command line."""
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle(" ".join(argv))


class Zygote:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    def serve(self) -> None:
        from engine.runtime.forkserver import listen_seqpacket

        listener = listen_seqpacket(self.socket_path)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, "accept")
        selector.register(0, selectors.EVENT_READ, "parent")
        try:
            os.write(1, b"ready\n")
        except BrokenPipeError:  # berthd ended before it heard from us (e.g. a refused -H): nothing to serve
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        while True:
            for key, _ in selector.select():
                if key.data == "parent":
                    if not os.read(0, 4096):  # berthd is gone; the shims are not ours to stop
                        return
                    continue
                conn, _ = listener.accept()
                with conn:
                    self._serve_one(conn, listener)

    def _serve_one(self, conn: socket.socket, listener: socket.socket) -> None:
        try:
            raw, fds, _, _ = socket.recv_fds(conn, _MAX_MESSAGE, _FDS)
        except OSError as exc:
            log.warning("zygote: bad request: %s", exc)
            return
        try:
            request = json.loads(raw or b"{}")
            host = "host" in request
            argv = request.get("host" if host else "argv")
            if len(fds) != _FDS or not isinstance(argv, list):
                raise ValueError("want argv (or host) and two fds (report pipe, stderr)")
            argv = [str(a) for a in argv]
            # Parsed before the fork: argparse's work (~1 MiB of touched pages) is not redone in each shim.
            target = _parse(argv, host)
            title = ["berth-shim-host" if host else "berth-shim", *argv]
            pid = self._fork(listener, conn, target, title, fds[0], fds[1])
            reply: dict[str, object] = {"ok": True, "pid": pid}
        except (OSError, ValueError) as exc:
            reply = {"ok": False, "message": str(exc)}
        finally:
            for fd in fds:
                os.close(fd)
        with contextlib.suppress(OSError):
            conn.send(json.dumps(reply).encode())

    def _fork(self, listener: socket.socket, conn: socket.socket, target: Callable[[int], int], title: list[str],
              report_fd: int, stderr_fd: int) -> int:
        pid = os.fork()
        if pid == 0:  # the intermediate child: a new session, one more fork, gone
            try:
                listener.close()
                conn.close()
                os.setsid()
                if os.fork() == 0:
                    _run_shim(target, title, report_fd, stderr_fd)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)  # it exits right after its fork: the shim is init's now
        if os.waitstatus_to_exitcode(status) != 0:
            raise OSError(f"zygote child failed (status {status})")
        return pid


def spawn_zygote(socket_path: str) -> subprocess.Popen[bytes]:
    """Start the zygote (fork+exec: safe from a threaded daemon) and return once it listens.

    Its stdin is a pipe from us: when the daemon ends, the zygote sees EOF and exits.
    """
    repo = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, "-m", "engine.containers.zygote", "--socket", socket_path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=repo, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.stdout.close()
    if line.strip() != b"ready":
        proc.wait()
        raise OSError(f"shim zygote failed to start (exit {proc.returncode})")
    threading.Thread(target=proc.wait, name="reap-zygote", daemon=True).start()
    return proc


class ZygoteUnavailable(OSError):
    """The zygote could not be started or reached."""


class ZygoteClient:
    """berthd's side: ask the zygote for a shim; start (or restart) the zygote when needed."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.broken: str | None = None  # why it could not start: not tried again (each try costs ~0.3 s)

    def start(self) -> None:
        with self.lock:
            if self.broken is not None:
                raise ZygoteUnavailable(self.broken)
            if self.proc is None or self.proc.poll() is not None:
                try:
                    self.proc = spawn_zygote(self.socket_path)
                except OSError as exc:
                    self.broken = str(exc)
                    raise ZygoteUnavailable(self.broken) from exc

    def start_in_background(self) -> None:
        """At daemon start: the zygote's imports take a moment; the first fork waits for them."""

        def start() -> None:
            try:
                self.start()
            except ZygoteUnavailable as exc:
                log.warning("shim zygote unavailable, shims will be exec'd: %s", exc)

        threading.Thread(target=start, name="start-shim-zygote", daemon=True).start()

    def fork_shim(self, argv: list[str], report_fd: int, stderr_fd: int) -> None:
        """Fork a shim with `argv`; it reports on `report_fd` like an exec'd one.

        ZygoteUnavailable: nothing was asked (the caller may exec the shim instead);
        any other OSError: the request was sent, a shim may exist.
        """
        self._request({"argv": argv}, report_fd, stderr_fd)

    def fork_host(self, argv: list[str], report_fd: int, stderr_fd: int) -> None:
        """Fork a shared shim host (engine/containers/shim_host.py) with `argv`; errors as fork_shim's."""
        self._request({"host": argv}, report_fd, stderr_fd)

    def _request(self, request: dict[str, list[str]], report_fd: int, stderr_fd: int) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            try:
                self.start()
                sock.connect(self.socket_path)
            except OSError as exc:
                raise ZygoteUnavailable(str(exc)) from exc
            socket.send_fds(sock, [json.dumps(request).encode()], [report_fd, stderr_fd])
            raw = sock.recv(_MAX_MESSAGE)
        reply = json.loads(raw or b"{}")
        if not reply.get("ok"):
            raise OSError(f"shim zygote: {reply.get('message', 'no answer')}")

    def close(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF: the zygote exits; running shims are not affected


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="berth-shim-zygote")
    parser.add_argument("--socket", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C to berthd's terminal is for berthd
    _preload()
    Zygote(args.socket).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fork server: the daemon's path to create/start/exec/wait without a process start per container."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime.forkserver import ForkServerClient, ForkServerError, spawn_fork_server

from .conftest import Bundle

pytestmark = pytest.mark.needs_root


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForkServerClient]:
    sock = str(tmp_path / "fs.sock")
    proc = spawn_fork_server(sock, root=str(tmp_path / "state"))
    try:
        yield ForkServerClient(sock)
    finally:
        proc.terminate()
        proc.wait()


def stdio_pipe() -> tuple[tuple[int, int, int], int]:
    r, w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    return (devnull, w, w), r


def close_all(*fds: int) -> None:
    for fd in set(fds):
        os.close(fd)


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_create_start_wait_through_the_fork_server(server: ForkServerClient, bundle: Bundle, run_tag: str) -> None:
    bundle.set_process(["sh", "-c", "echo hello from $(hostname); exit 5"])
    stdio, out = stdio_pipe()
    cid = f"{run_tag}-fs1"
    pid = server.create(cid, str(bundle.for_container(cid)), stdio=stdio)
    close_all(*stdio)  # the container holds its own copies now
    assert server.state(cid)["status"] == "created"
    server.start(cid)
    assert server.wait(pid) == 5
    assert read_all(out) == b"hello from berth\n"
    assert server.state(cid)["status"] == "stopped"
    server.delete(cid)
    with pytest.raises(ForkServerError, match="does not exist"):
        server.state(cid)


def test_exec_and_wait_from_another_thread(server: ForkServerClient, bundle: Bundle, run_tag: str) -> None:
    bundle.set_process(["sleep", "1000"])
    stdio, out = stdio_pipe()
    cid = f"{run_tag}-fs2"
    init = server.create(cid, str(bundle.for_container(cid)), stdio=stdio)
    close_all(*stdio)
    os.close(out)
    server.start(cid)
    init_exit: list[int] = []
    waiter = threading.Thread(target=lambda: init_exit.append(server.wait(init)))
    waiter.start()  # a parked wait must not block other requests
    try:
        stdio2, out2 = stdio_pipe()
        pid = server.exec(cid, {"args": ["sh", "-c", "cat /proc/1/cmdline; exit 3"], "cwd": "/",
                                "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}, stdio=stdio2)
        close_all(*stdio2)
        assert server.wait(pid) == 3
        assert read_all(out2) == b"sleep\x001000\x00"
    finally:
        server.delete(cid, force=True)
        waiter.join()
    assert init_exit == [128 + 9]


def test_errors_come_back_typed(server: ForkServerClient, bundle: Bundle, run_tag: str) -> None:
    bundle.set_process(["no-such-binary"])
    with pytest.raises(ForkServerError) as info:
        server.create(f"{run_tag}-fs3", str(bundle.for_container(f"{run_tag}-fs3")))
    assert info.value.kind == "SetupFailed" and "executable file not found" in str(info.value)


def test_async_client_runs_containers_concurrently(server: ForkServerClient, bundle: Bundle, run_tag: str) -> None:
    import asyncio

    from engine.runtime.forkserver import AsyncForkServerClient

    client = AsyncForkServerClient(server.socket_path)
    bundle.set_process(["sh", "-c", "exit $(hostname | wc -c)"])  # "berth\n": exit 6

    async def one(n: int) -> int:
        cid = f"{run_tag}-afs{n}"
        pid = await client.create(cid, str(bundle.for_container(cid)))
        await client.start(cid)
        code = await client.wait(pid)
        await client.delete(cid)
        return code

    async def main() -> list[int]:
        return list(await asyncio.gather(*(one(n) for n in range(4))))

    assert asyncio.run(main()) == [6, 6, 6, 6]


def test_the_server_side_imports_no_threading_logging_or_subprocess() -> None:
    # Every container process is forked from the server: threading's and logging's at-fork handlers
    # would run in each (~0.4 ms of its start, bench.runtime_run), so the server imports neither.
    repo = str(Path(__file__).resolve().parents[2])
    code = (
        f"import sys; sys.path.insert(0, {repo!r})\n"
        "import engine.runtime.forkserver, engine.runtime.create, engine.runtime.lifecycle, engine.runtime.exec\n"
        "print(','.join(sorted({'threading', 'logging', 'subprocess'} & sys.modules.keys())))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout

"""Container filesystem endpoints: archive (`docker cp`, HEAD/GET/PUT), export and changes (`docker diff`).

The work is blocking (tree walks, tar, mounts in a private namespace) and
runs in threads from :mod:`engine.containers.filesystem`; tars cross to the
event loop through a pipe, so a copy streams instead of being held in memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import BinaryIO

from engine.api.errors import InvalidParameter
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router
from engine.containers.filesystem import ContainerFilesystem
from engine.containers.records import ContainerRecord
from engine.containers.service import ContainerService

PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"
_CHUNK = 1 << 20
_DISCARD_LIMIT = 256 << 20


def register(router: Router, service: ContainerService) -> None:
    fs = ContainerFilesystem(service)

    def target(request: Request) -> str:
        path = request.arg("path")
        if not path:
            raise InvalidParameter("bad parameter: pathcannot be empty")  # dockerd's words, missing space included
        return path

    @contextlib.asynccontextmanager
    async def locked(request: Request) -> AsyncIterator[ContainerRecord]:
        """The container's record, read again under its lock, held for the whole operation: a `start`
        meanwhile waits, so a stopped container's rootfs is mounted by one of them at a time (moby holds
        the container lock for a copy too; engine/containers/container_locks.py)."""
        async with service.locks.hold(service.store.get(request.params["id"]).id):
            yield service.store.get(request.params["id"])

    async def archive_get(request: Request, conn: HTTPConnection) -> Response | None:
        path = target(request)
        async with locked(request) as record:
            stat = await asyncio.to_thread(fs.stat_path, record, path)
            header = (PATH_STAT_HEADER, base64.b64encode(json.dumps(stat.to_json()).encode()).decode())
            if request.method == "HEAD":
                return Response(200, b"", "", [header])
            # dockerd's events: archive-path as the copy starts, extract-to-dir once done, export at the end.
            service.publish_event(record, "archive-path")
            await _stream_from_thread(conn, lambda out: fs.write_archive(record, path, out), [header],
                                      _bound(record, "a copy from the container"))
        return None

    async def archive_put(request: Request, conn: HTTPConnection) -> Response:
        path = target(request)
        async with locked(request) as record:
            await _extract(request, record, path)
        service.publish_event(record, "extract-to-dir")
        return Response(200, b"", "")

    async def _extract(request: Request, record: ContainerRecord, path: str) -> None:
        no_overwrite = request.flag("noOverwriteDirNonDir")
        copy_uid_gid = request.flag("copyUIDGID")
        read_fd, write_fd = os.pipe()
        chunks = _bounded_chunks(request, _bound(record, "a copy into the container"))

        def extract() -> None:
            with os.fdopen(read_fd, "rb") as stream:
                fs.extract_archive(record, path, stream, no_overwrite_dir_non_dir=no_overwrite,
                                   copy_uid_gid=copy_uid_gid)
                while stream.read(_CHUNK):  # what follows the end-of-archive blocks
                    pass

        job = asyncio.ensure_future(asyncio.to_thread(extract))
        try:
            async for chunk in chunks:
                if job.done():
                    break
                try:
                    await asyncio.to_thread(_write_all, write_fd, chunk)
                except BrokenPipeError:
                    break  # the extraction failed: its error is the answer
        except BaseException:
            # The client went away or stalled: the extraction ends on the truncated tar before the
            # lock goes (it works in the container's rootfs, which a start waiting on the lock mounts).
            os.close(write_fd)
            with contextlib.suppress(Exception):
                await job
            raise
        os.close(write_fd)
        try:
            await job
        except Exception:
            # Refused before the body was read (a read-only rootfs, a missing path): read the rest
            # first, or the client may hit a closed socket while still sending and never see why
            # (the docker CLI then says "broken pipe").  Past the limit the connection is closed.
            total = 0
            async for chunk in chunks:
                total += len(chunk)
                if total > _DISCARD_LIMIT:
                    break
            raise

    async def export(request: Request, conn: HTTPConnection) -> None:
        async with locked(request) as record:
            await _stream_from_thread(conn, lambda out: fs.write_export(record, out), None,
                                      _bound(record, "an export"))
        service.publish_event(record, "export")

    async def changes(request: Request, conn: HTTPConnection) -> Response:
        record = service.store.get(request.params["id"])
        found = await asyncio.to_thread(fs.changes, record)
        # dockerd answers null, not [], when nothing changed (a nil Go slice).
        return Response.json([{"Path": c.path, "Kind": c.kind} for c in found] or None)

    def _bound(record: ContainerRecord, what: str) -> Callable[[Awaitable[None]], Awaitable[None]]:
        """A transfer step of an operation holding the container's lock, which a stalled client keeps
        no longer than the lock's patience once a start/rm waits (container_locks.py)."""
        return lambda step: service.locks.bounded(record.id, step, what)

    router.add("GET", "/containers/{id}/archive", archive_get)
    router.add("PUT", "/containers/{id}/archive", archive_put)
    router.add("GET", "/containers/{id}/export", export)
    router.add("GET", "/containers/{id}/changes", changes)


async def _bounded_chunks(request: Request, bound: Callable[[Awaitable[None]], Awaitable[None]]
                          ) -> AsyncIterator[bytes]:
    """The request body's chunks, each read through `bound`."""
    body = request.body_chunks()
    chunk = b""

    async def read() -> None:
        nonlocal chunk
        chunk = await anext(body, b"")

    while True:
        await bound(read())
        if not chunk:
            return
        yield chunk


async def _stream_from_thread(conn: HTTPConnection, produce: Callable[[BinaryIO], None],
                              extra: list[tuple[str, str]] | None = None,
                              bound: Callable[[Awaitable[None]], Awaitable[None]] | None = None) -> None:
    """Run ``produce(out)`` in a thread and stream what it writes as the response body.

    A producer that fails after the headers went out makes the handler raise,
    and the server then closes the connection: the client sees a truncated
    body rather than a tar that looks complete.
    """
    read_fd, write_fd = os.pipe()

    def job() -> None:
        with os.fdopen(write_fd, "wb") as out:
            produce(out)

    task = asyncio.ensure_future(asyncio.to_thread(job))
    try:
        # Headers wait for the first bytes: a producer that fails before any (a mount that
        # cannot be made) still gets its real status and message.
        chunk = await asyncio.to_thread(os.read, read_fd, _CHUNK)
        if not chunk:
            await task
        send = bound or (lambda step: step)
        await send(conn.start_stream(200, "application/x-tar", extra))
        while chunk:
            await send(conn.write_chunk(chunk))
            chunk = await asyncio.to_thread(os.read, read_fd, _CHUNK)
    except BaseException:
        os.close(read_fd)  # a producer still writing gets EPIPE and stops
        with contextlib.suppress(Exception):
            await task
        raise
    os.close(read_fd)
    await task
    await conn.end_stream()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

"""Exec endpoints: POST /containers/{id}/exec, POST /exec/{id}/start|resize, GET /exec/{id}/json."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.api.errors import InvalidParameter
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router
from engine.containers.attach import AttachClient
from engine.containers.execs import ExecFailed, ExecService
from engine.stdcopy import STDOUT


def register(router: Router, execs: ExecService) -> None:
    async def create(request: Request, conn: HTTPConnection) -> Response:
        body = await request.json()
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: the body must be an exec config object")
        instance = execs.create(request.params["id"], body)
        return Response.json({"Id": instance.id}, 201)

    async def start(request: Request, conn: HTTPConnection) -> Response | None:
        instance = execs.get(request.params["id"])
        body: dict[str, Any] = await request.json() or {}
        if body.get("Detach"):
            shim = await execs.spawn(instance, with_stdin=False)
            # Answer now: the process runs on; the relay task records its exit.
            task = asyncio.ensure_future(execs.relay(instance, shim, None))
            _background.add(task)
            task.add_done_callback(_background.discard)
            return Response.empty(200)
        tty = bool(instance.config.get("Tty"))
        content_type = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
        leftover = await conn.hijack(content_type)
        client = AttachClient(conn.reader, conn.writer, stdin=bool(instance.config.get("AttachStdin")),
                              stdout=bool(instance.config.get("AttachStdout", True)),
                              stderr=bool(instance.config.get("AttachStderr", True)), tty=tty, early_stdin=leftover)
        try:
            shim = await execs.spawn(instance, with_stdin=True)
        except ExecFailed as exc:
            # Like dockerd: the stream is already promised, so the error goes down it, and the
            # client reads the exit code (126/127) from GET /exec/{id}/json.
            client.send(STDOUT, f"{exc}\r\n".encode())
            client.close()
            return None
        await execs.relay(instance, shim, client)
        return None

    async def inspect(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(execs.get(request.params["id"]).inspect())

    async def resize(request: Request, conn: HTTPConnection) -> Response:
        instance = execs.get(request.params["id"])
        try:
            height, width = int(request.arg("h") or 0), int(request.arg("w") or 0)
        except ValueError:
            raise InvalidParameter("h and w must be integers") from None
        if instance.running:
            await execs.resize(instance, height, width)
        return Response.empty(200)

    router.add("POST", "/containers/{id}/exec", create)
    router.add("POST", "/exec/{id}/start", start)
    router.add("POST", "/exec/{id}/resize", resize)
    router.add("GET", "/exec/{id}/json", inspect)


_background: set[asyncio.Future[None]] = set()

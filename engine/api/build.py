"""`POST /build` (the classic builder), `POST /build/prune` and `POST /commit`.

The docker CLI's classic path (`DOCKER_BUILDKIT=0 docker build`) sends the
context tar as the body and the options as query parameters (`t` repeated,
`dockerfile`, `buildargs` and `labels` as JSON, `target`, `nocache`, `pull`,
`q`, `networkmode`...).  Output is JSON lines: `{"stream": ...}` for the
step log, `{"aux": {"ID": ...}}` for the image id, `{"errorDetail": ...,
"error": ...}` for a failure.  Like dockerd, an error before the first line
is a plain HTTP error (status from engine/api/errors.py); after it, an
error line ends the stream.
"""

from __future__ import annotations

import json
from typing import Any

from engine.api.errors import InvalidParameter
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router
from engine.build.executor import BuildOptions, StepFailed


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _json_map(request: Request, name: str) -> dict[str, str]:
    raw = request.arg(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"invalid {name} parameter: not JSON") from None
    if not isinstance(value, dict):
        raise InvalidParameter(f"invalid {name} parameter: a JSON object is expected")
    # buildargs is map[string]*string: a null value means "from the client's environment", already resolved.
    return {str(k): str(v) for k, v in value.items() if v is not None}


def build_options(request: Request) -> BuildOptions:
    if (request.arg("version") or "1") == "2":
        raise InvalidParameter("BuildKit (version=2) is not supported by Berth: use the classic builder "
                               "(DOCKER_BUILDKIT=0)")
    if request.arg("remote"):
        raise InvalidParameter("remote build contexts (remote=) are not supported: send the context as the body")
    return BuildOptions(
        dockerfile=request.arg("dockerfile") or "Dockerfile",
        tags=[t for t in request.query.get("t", []) if t],
        build_args=_json_map(request, "buildargs"),
        labels=_json_map(request, "labels"),
        target=request.arg("target") or None,
        no_cache=request.flag("nocache"),
        pull=request.flag("pull"),
        network_mode=request.arg("networkmode") or "default",
        quiet=request.flag("q"),
    )


def register(router: Router, service: Any, containers: Any) -> None:
    """`service` is an engine.build.service.BuildService, `containers` the ContainerService."""

    async def build(request: Request, conn: HTTPConnection) -> None:
        options = build_options(request)
        started = False

        async def emit(message: dict[str, Any]) -> None:
            nonlocal started
            if not started:
                await conn.start_stream(200, "application/json")
                started = True
            await conn.write_chunk(_line(message))

        try:
            await service.build(request.body_chunks(), options, emit)
        except Exception as exc:
            if not started:
                raise
            detail: dict[str, Any] = {"message": str(exc)}
            if isinstance(exc, StepFailed) and exc.code:
                detail["code"] = exc.code
            await conn.end_stream(_line({"errorDetail": detail, "error": str(exc)}))
            return
        await conn.end_stream()

    async def prune(request: Request, conn: HTTPConnection) -> Response:
        import asyncio

        from engine.api.errors import InvalidParameter
        from engine.api.filters import parse_filters

        # The whole cache goes: a filter or a space limit that would keep part of it is refused, not ignored.
        if parse_filters(request.arg("filters")):
            raise InvalidParameter("builder prune supports no filters yet: the whole build cache is removed")
        for limit in ("keep-storage", "reserved-space", "max-used-space", "min-free-space"):
            if request.arg(limit) not in (None, "", "0"):
                raise InvalidParameter(f"builder prune does not support {limit} yet: the whole build cache is "
                                       "removed")
        return Response.json(await asyncio.to_thread(service.prune))

    async def commit(request: Request, conn: HTTPConnection) -> Response:
        from engine.containers.commit import commit_container

        container = request.arg("container")
        if not container:
            raise InvalidParameter("container is required")
        body = await request.read_body()
        config = json.loads(body) if body.strip() else None
        if config is not None and not isinstance(config, dict):
            raise InvalidParameter("the body must be a container config object")
        image_id = await commit_container(
            containers, container, repo=request.arg("repo") or "", tag=request.arg("tag") or "",
            comment=request.arg("comment") or "", author=request.arg("author") or "",
            pause=request.flag("pause", True), changes=list(request.query.get("changes", [])), config=config)
        return Response.json({"Id": image_id}, 201)

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
    router.add("POST", "/commit", commit)

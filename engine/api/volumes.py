"""Volume endpoints: create, list, inspect, remove, prune (the local driver)."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.api.errors import InvalidParameter
from engine.api.filters import parse_filters
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router


def register(router: Router, volumes: Any, publish: Any) -> None:
    """`volumes` is an engine.volumes.VolumeService."""

    async def create(request: Request, conn: HTTPConnection) -> Response:
        body = await request.json() or {}
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: the body must be a volume config object")
        doc = await asyncio.to_thread(volumes.create, name=str(body.get("Name") or ""),
                                      driver=str(body.get("Driver") or ""),
                                      driver_opts=body.get("DriverOpts") or None, labels=body.get("Labels") or None)
        publish("volume", "create", doc["Name"], {"driver": doc["Driver"]})
        return Response.json(doc, 201)

    async def list_(request: Request, conn: HTTPConnection) -> Response:
        filters = parse_filters(request.arg("filters"))
        return Response.json(await asyncio.to_thread(volumes.list_volumes, filters))

    async def inspect(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(await asyncio.to_thread(volumes.inspect, request.params["name"]))

    async def remove(request: Request, conn: HTTPConnection) -> Response:
        await asyncio.to_thread(volumes.remove, request.params["name"], request.flag("force"))
        publish("volume", "destroy", request.params["name"], {"driver": "local"})
        return Response.empty(204)

    async def prune(request: Request, conn: HTTPConnection) -> Response:
        filters = parse_filters(request.arg("filters"))
        report = await asyncio.to_thread(volumes.prune, filters)
        for name in report.get("VolumesDeleted") or []:
            publish("volume", "destroy", name, {"driver": "local"})
        publish("volume", "prune", "", {"reclaimed": str(report.get("SpaceReclaimed", 0))})
        return Response.json(report)

    router.add("POST", "/volumes/create", create)
    router.add("GET", "/volumes", list_)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)

"""Network endpoints: list, inspect, create, remove, connect, disconnect, prune (Engine API 1.51)."""

from __future__ import annotations

from typing import Any

from engine.api.errors import InvalidParameter
from engine.api.filters import Filters, match_labels, parse_filters, prune_keeps
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router
from engine.containers.service import ContainerService
from engine.network.records import NetworkRecord
from engine.network.service import NetworkService

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PRUNE_FILTERS = {"label", "label!", "until"}


def _matches(record: NetworkRecord, filters: Filters, in_use: bool) -> bool:
    if "name" in filters and not any(term in record.name for term in filters["name"]):
        return False
    if "id" in filters and not any(record.id.startswith(term) for term in filters["id"]):
        return False
    if "driver" in filters and record.driver not in filters["driver"]:
        return False
    if "scope" in filters and "local" not in filters["scope"]:
        return False
    if "type" in filters:
        kinds = set(filters["type"])
        if not kinds <= {"custom", "builtin"}:
            raise InvalidParameter(f"invalid filter: 'type'='{','.join(sorted(kinds))}'")
        if ("builtin" if record.predefined else "custom") not in kinds:
            return False
    if "dangling" in filters:
        wanted = filters["dangling"][-1].lower() in ("1", "true")
        if wanted == (in_use or record.predefined):
            return False
    return match_labels(filters, record.labels)


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidParameter(f"invalid JSON: the body must be a {what} object")
    return body


def register(router: Router, networks: NetworkService, containers: ContainerService) -> None:
    def names() -> dict[str, str]:
        return {r.id: r.name for r in containers.store.all()}

    def with_shared(doc: dict[str, Any]) -> dict[str, Any]:
        """`host` and `none` list their running containers too (they have no endpoint of their own)."""
        if doc["Driver"] in ("host", "null"):
            for record in containers.store.all():
                mode = str(record.host_config.get("NetworkMode") or "")
                if mode in (doc["Name"], doc["Id"]) and record.state.status in ("running", "paused"):
                    doc["Containers"][record.id] = {"Name": record.name, "EndpointID": "", "MacAddress": "",
                                                    "IPv4Address": "", "IPv6Address": ""}
        return doc

    async def list_(request: Request, conn: HTTPConnection) -> Response:
        filters = parse_filters(request.arg("filters"), LIST_FILTERS)
        all_names = names()
        docs = [with_shared(networks.inspect(r, all_names)) for r in networks.all()
                if _matches(r, filters, bool(networks.containers_on(r.id)))]
        return Response.json(docs)

    async def inspect(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(with_shared(networks.inspect(networks.get(request.params["id"]), names())))

    async def create(request: Request, conn: HTTPConnection) -> Response:
        body = _object(await request.json(), "network config")
        record, warning = await networks.create(body)
        return Response.json({"Id": record.id, "Warning": warning}, 201)

    async def remove(request: Request, conn: HTTPConnection) -> Response:
        await networks.remove(request.params["id"])
        return Response.empty(204)

    async def connect(request: Request, conn: HTTPConnection) -> Response:
        body = _object(await request.json(), "connect request")
        container = containers.store.get(str(body.get("Container") or ""))
        await networks.connect_container(request.params["id"], container, dict(body.get("EndpointConfig") or {}))
        return Response.empty(200)

    async def disconnect(request: Request, conn: HTTPConnection) -> Response:
        body = _object(await request.json(), "disconnect request")
        container = containers.store.get(str(body.get("Container") or ""))
        await networks.disconnect_container(request.params["id"], container, bool(body.get("Force")))
        return Response.empty(200)

    async def prune(request: Request, conn: HTTPConnection) -> Response:
        filters = parse_filters(request.arg("filters"), PRUNE_FILTERS)

        def wanted(record: NetworkRecord) -> bool:
            return not prune_keeps(filters, record.created, record.labels)

        deleted = await networks.prune(wanted)
        networks.publish("network", "prune", "", {})
        return Response.json({"NetworksDeleted": deleted or None})

    router.add("GET", "/networks", list_)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)

"""Container endpoints: create, start, wait, attach, logs, inspect, list, stop, kill, remove, pause."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from engine.api.config_types import RESOURCES, check_create, check_fields
from engine.api.errors import InvalidParameter, NotModified
from engine.api.filters import parse_filters
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router
from engine.containers.attach import AttachClient
from engine.containers.docker_json import inspect_json, summary_json
from engine.containers.health import health_status
from engine.containers.json_log import LogFollower, read_records, rfc3339_nano
from engine.containers.records import ContainerRecord
from engine.containers.service import AlreadyRunning, AlreadyStopped, ContainerService
from engine.stdcopy import STDERR, STDOUT, encode_frame

LIST_FILTERS = {"id", "name", "label", "status", "exited", "ancestor", "before", "since", "health", "isolation",
                "network", "publish", "expose", "volume", "is-task"}


def _int_arg(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.arg(name)
    if value in (None, ""):
        return default
    try:
        return int(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidParameter(f"invalid value for {name}: {value!r}") from None


def register(router: Router, service: ContainerService) -> None:
    def paths(record: ContainerRecord) -> dict[str, str]:
        data = service.paths.data_dir(record.id)
        return {"log": str(service.paths.log_path(record.id)), "hosts": str(data / "hosts"),
                "hostname": str(data / "hostname"), "resolv": str(data / "resolv.conf"),
                "rootfs": str(service.paths.exec_dir(record.id) / "rootfs")}

    async def create(request: Request, conn: HTTPConnection) -> Response:
        body = await request.json()
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: the body must be a container config object")
        host_config = body.pop("HostConfig", None) or {}
        networking = body.pop("NetworkingConfig", None) or {}
        if not isinstance(host_config, dict) or not isinstance(networking, dict):
            raise InvalidParameter("HostConfig and NetworkingConfig must be objects")
        check_create(body, host_config)
        record, warnings = await service.create(request.arg("name") or None, body, host_config, networking)
        return Response.json({"Id": record.id, "Warnings": warnings}, 201)

    async def start(request: Request, conn: HTTPConnection) -> Response:
        try:
            await service.start(request.params["id"])
        except AlreadyRunning:
            raise NotModified("container already started") from None
        return Response.empty(204)

    async def wait(request: Request, conn: HTTPConnection) -> None:
        future = service.wait(request.params["id"], request.arg("condition") or "not-running")
        # Headers now: the docker CLI sends `start` only after it has them (MACHINE-NOTES).
        await conn.start_stream(200, "application/json")
        hangup: asyncio.Future[Any] = asyncio.ensure_future(conn.reader.read(1))
        try:
            pending: set[asyncio.Future[Any]] = {future, hangup}
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if future not in done:
                return  # the client went away (`docker run -d` hangs up on purpose)
            record = future.result()
            error = {"Message": record.state.error} if record.state.error else None
            await conn.end_stream(json.dumps({"StatusCode": record.state.exit_code, "Error": error}).encode()
                                  + b"\n")
        finally:
            hangup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hangup

    async def attach(request: Request, conn: HTTPConnection) -> None:
        record = service.store.get(request.params["id"])
        tty = bool(record.config.get("Tty"))
        if not request.flag("stream", True) and not request.flag("logs"):
            raise InvalidParameter("at least one of stream or logs must be set")
        content_type = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
        leftover = await conn.hijack(content_type)
        client = AttachClient(conn.reader, conn.writer, stdin=request.flag("stdin"), stdout=request.flag("stdout"),
                              stderr=request.flag("stderr"), tty=tty, early_stdin=leftover)
        if request.flag("logs"):
            for entry in read_records(service.paths.log_path(record.id)):
                client.send(STDOUT if entry.stream == "stdout" else STDERR, entry.text.encode())
        if not request.flag("stream", True):  # logs only: replayed above, nothing to follow
            client.close()
            return
        service.live_state(record.id).hub.add(client)
        await client.done.wait()

    async def logs(request: Request, conn: HTTPConnection) -> None:
        from engine.api.events import parse_timestamp

        record = service.store.get(request.params["id"])
        want = {"stdout": request.flag("stdout"), "stderr": request.flag("stderr")}
        if not any(want.values()):
            raise InvalidParameter("you must choose at least one stream")
        tail_arg = request.arg("tail") or "all"
        tail = None if tail_arg == "all" else _int_arg(request, "tail")
        since, until = parse_timestamp(request.arg("since")), parse_timestamp(request.arg("until"))
        if since == 0:
            since = None
        stamps = request.flag("timestamps")
        tty = bool(record.config.get("Tty"))
        await conn.start_stream(200, "application/vnd.docker.raw-stream" if tty
                                else "application/vnd.docker.multiplexed-stream")
        log_path = service.paths.log_path(record.id)

        def frame(stream: str, text: str, time_ns: int) -> bytes:
            payload = ((rfc3339_nano(time_ns) + " ") if stamps else "") + text
            data = payload.encode()
            return data if tty else encode_frame(STDOUT if stream == "stdout" else STDERR, data)

        live = service.live_state(record.id)
        follower = LogFollower(log_path)
        follower.start_at_end()
        # The follower starts before the replay so nothing written in between is lost; what
        # both see (written after the follower opened, or before the file existed) is sent once:
        # records are appended in time order, so the follower skips up to the last replayed time.
        replayed_until = -1
        try:
            for entry in read_records(log_path, since, until, tail):
                replayed_until = max(replayed_until, entry.time_ns)
                if want[entry.stream]:
                    await conn.write_chunk(frame(entry.stream, entry.text, entry.time_ns))
            running = record.state.status in ("running", "paused", "restarting")
            if request.flag("follow") and until is None and running:
                exited = live.exited
                hangup: asyncio.Future[Any] = asyncio.ensure_future(conn.reader.read(1))
                try:
                    while not hangup.done():
                        for entry in follower.poll():
                            if entry.time_ns > replayed_until and want[entry.stream]:
                                await conn.write_chunk(frame(entry.stream, entry.text, entry.time_ns))
                        if exited.is_set():
                            break  # that poll, after the exit, drained what the run wrote
                        ended = asyncio.ensure_future(exited.wait())
                        await asyncio.wait({hangup, ended}, timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
                        ended.cancel()
                finally:
                    hangup.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await hangup
        finally:
            follower.close()
        await conn.end_stream()

    async def inspect(request: Request, conn: HTTPConnection) -> Response:
        record = service.store.get(request.params["id"])
        doc = inspect_json(record, paths(record), service.mount_points(record))
        if service.network is not None:
            doc["NetworkSettings"].update(service.network.settings(record.id, record.config, record.host_config))
        return Response.json(doc)

    async def list_(request: Request, conn: HTTPConnection) -> Response:
        filters = parse_filters(request.arg("filters"), LIST_FILTERS)
        for value in filters.get("health", []):
            if value not in ("starting", "healthy", "unhealthy", "none"):
                raise InvalidParameter(f"Unrecognised filter value for health: {value}")
        records = service.store.all()
        limit = _int_arg(request, "limit", -1) or -1
        # A limit includes stopped containers, like dockerd (`docker ps -l` sends all=0&limit=1).
        if not request.flag("all") and limit <= 0:
            records = [r for r in records if r.state.status in ("running", "paused", "restarting")]
        records = [r for r in records if _matches(r, filters)]
        summaries = [s for s in (_with_network(summary_json(r), r) for r in records) if _network_matches(s, filters)]
        return Response.json(summaries[:limit] if limit > 0 else summaries)

    def _with_network(summary: dict[str, Any], record: ContainerRecord) -> dict[str, Any]:
        if service.network is not None:
            summary["Ports"] = service.network.summary_ports(record.id, record.config)
            summary["NetworkSettings"] = {"Networks": service.network.summary_networks(record.id, record.host_config)}
        return summary

    def _network_matches(summary: dict[str, Any], filters: dict[str, list[str]]) -> bool:
        """ps filters network=<name|id>, publish=<port>[/<proto>], expose=... (ranges a-b too)."""
        networks = summary["NetworkSettings"]["Networks"]
        ids = [str(n.get("NetworkID") or "") for n in networks.values()]
        if "network" in filters and not any(term in networks or any(i and i.startswith(term) for i in ids)
                                            for term in filters["network"]):
            return False
        for key, published_only in (("publish", True), ("expose", False)):
            if key in filters:
                ports = {(p["PrivatePort"], p["Type"]) for p in summary["Ports"]
                         if "PublicPort" in p or not published_only}
                if not any(_port_term_matches(term, ports) for term in filters[key]):
                    return False
        return True

    async def stop(request: Request, conn: HTTPConnection) -> Response:
        try:
            await service.stop(request.params["id"], _int_arg(request, "t", None), request.arg("signal"))
        except AlreadyStopped:
            raise NotModified("container already stopped") from None
        return Response.empty(204)

    async def restart(request: Request, conn: HTTPConnection) -> Response:
        with contextlib.suppress(AlreadyStopped):
            await service.stop(request.params["id"], _int_arg(request, "t", None), request.arg("signal"))
        await service.start(request.params["id"])
        return Response.empty(204)

    async def kill(request: Request, conn: HTTPConnection) -> Response:
        await service.kill(request.params["id"], request.arg("signal"))
        return Response.empty(204)

    async def remove(request: Request, conn: HTTPConnection) -> Response:
        await service.remove(request.params["id"], force=request.flag("force"), volumes=request.flag("v"))
        return Response.empty(204)

    async def pause(request: Request, conn: HTTPConnection) -> Response:
        await service.pause(request.params["id"])
        return Response.empty(204)

    async def unpause(request: Request, conn: HTTPConnection) -> Response:
        await service.unpause(request.params["id"])
        return Response.empty(204)

    async def resize(request: Request, conn: HTTPConnection) -> Response:
        record = service.store.get(request.params["id"])
        if record.state.status not in ("running", "paused"):
            from engine.containers.errors import StateConflict

            raise StateConflict(f"Container {record.id} is not running")
        await _shim_call(service, record.id, {"op": "resize", "height": _int_arg(request, "h", 0),
                                              "width": _int_arg(request, "w", 0)})
        return Response.text("")

    async def rename(request: Request, conn: HTTPConnection) -> Response:
        name = request.arg("name")
        if not name:
            raise InvalidParameter("Neither old nor new names may be empty")
        await service.rename(request.params["id"], name)
        return Response.empty(204)

    async def update(request: Request, conn: HTTPConnection) -> Response:
        body = await request.json() or {}
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON: the body must be an update object")
        check_fields("UpdateConfig", body, RESOURCES)
        return Response.json({"Warnings": await service.update(request.params["id"], body)})

    async def top(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(await service.top(request.params["id"]))

    async def stats(request: Request, conn: HTTPConnection) -> Response | None:
        stream = request.flag("stream", True) and not request.flag("one-shot")
        previous = None
        if not stream:
            if not request.flag("one-shot"):
                # Like dockerd: a non-streamed sample has CPU deltas over a short interval.
                previous = await service.stats(request.params["id"], None)
                await asyncio.sleep(1)
            return Response.json(await service.stats(request.params["id"], previous))
        await conn.start_stream(200, "application/json")
        hangup: asyncio.Future[Any] = asyncio.ensure_future(conn.reader.read(1))
        try:
            while not hangup.done():
                try:
                    sample = await service.stats(request.params["id"], previous)
                except Exception:  # the container stopped: the stream ends, like dockerd's
                    break
                await conn.write_chunk(json.dumps(sample).encode() + b"\n")
                previous = sample
                await asyncio.wait({hangup}, timeout=1)
        finally:
            hangup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hangup
        await conn.end_stream()
        return None

    async def prune(request: Request, conn: HTTPConnection) -> Response:
        from engine.api.filters import parse_filters, prune_keeps

        filters = parse_filters(request.arg("filters"), {"until", "label", "label!"})
        return Response.json(await service.prune(
            lambda r: prune_keeps(filters, r.created, dict(r.config.get("Labels") or {}))))

    router.add("POST", "/containers/create", create)
    router.add("POST", "/containers/prune", prune)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/update", update)
    router.add("GET", "/containers/{id}/top", top)
    router.add("GET", "/containers/{id}/stats", stats)
    router.add("GET", "/containers/json", list_)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("DELETE", "/containers/{id}", remove)


async def _shim_call(service: ContainerService, container_id: str, op: dict[str, Any]) -> dict[str, Any]:
    from engine.containers.shim import SHIM_SOCKET

    reader, writer = await asyncio.open_unix_connection(str(service.paths.exec_dir(container_id) / SHIM_SOCKET))
    try:
        writer.write(json.dumps(op).encode() + b"\n")
        await writer.drain()
        reply: dict[str, Any] = json.loads(await reader.readline() or b"{}")
    finally:
        writer.close()
    if "error" in reply:
        raise InvalidParameter(str(reply["error"]))
    return reply


def _port_term_matches(term: str, ports: set[tuple[int, str]]) -> bool:
    numbers, _, proto = term.partition("/")
    low, _, high = numbers.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise InvalidParameter(f"invalid port filter {term!r}") from None
    return any(first <= port <= last and proto in ("", kind) for port, kind in ports)


def _matches(record: ContainerRecord, filters: dict[str, list[str]]) -> bool:
    if "id" in filters and not any(record.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(v.lstrip("/") in record.name for v in filters["name"]):
        return False
    if "status" in filters and record.state.status not in filters["status"]:
        return False
    if "exited" in filters and not (record.state.status == "exited"
                                    and str(record.state.exit_code) in filters["exited"]):
        return False
    if "ancestor" in filters and not any(v in (record.image_name, record.image_id) or
                                         record.image_id.startswith(v) for v in filters["ancestor"]):
        return False
    if "health" in filters and health_status(record) not in filters["health"]:
        return False
    labels = record.config.get("Labels") or {}
    for term in filters.get("label", []):
        key, eq, value = term.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True

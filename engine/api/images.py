"""Image endpoints over the image store: list, inspect, history, tag, remove, load, save."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from engine.api.errors import InvalidParameter
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router

MAX_LOAD_BYTES = 64 * 1024**3


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _image_matches(summary: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """`docker images` filters: reference (a glob over name[:tag]), dangling, label."""
    import fnmatch

    tags: list[str] = summary.get("RepoTags") or []
    if "reference" in filters:
        def match(pattern: str, tag: str) -> bool:
            name, _, _tag = tag.rpartition(":")
            return fnmatch.fnmatchcase(tag, pattern) or fnmatch.fnmatchcase(name, pattern)

        if not any(match(p, t) for p in filters["reference"] for t in tags):
            return False
    if "dangling" in filters:
        dangling = filters["dangling"][-1].lower() in ("1", "true")
        if dangling != (not tags):
            return False
    labels = summary.get("Labels") or {}
    for term in filters.get("label", []):
        key, eq, value = term.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def register(router: Router, images: Any, publish: Any, registry_config: Any = None) -> None:
    """`images` is an engine.images.image_store.ImageStore.

    `registry_config` is a callable returning the daemon's registry settings
    (`registry-mirrors`, `insecure-registries`), read per pull so SIGHUP applies.
    """
    async def list_(request: Request, conn: HTTPConnection) -> Response:
        from engine.api.filters import parse_filters

        filters = parse_filters(request.arg("filters"), {"reference", "dangling", "label", "before", "since",
                                                         "until"})
        summaries = await asyncio.to_thread(images.summaries)
        return Response.json([s for s in summaries if _image_matches(s, filters)])

    async def inspect(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(await asyncio.to_thread(images.inspect, request.params["name"]))

    async def history(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(await asyncio.to_thread(images.history, request.params["name"]))

    async def tag(request: Request, conn: HTTPConnection) -> Response:
        repo = request.arg("repo")
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        target = f"{repo}:{request.arg('tag')}" if request.arg("tag") else repo
        ref = await asyncio.to_thread(images.tag, request.params["name"], target)
        record = await asyncio.to_thread(images.get, target)
        publish("image", "tag", record.id, {"name": ref.familiar() if hasattr(ref, "familiar") else target})
        return Response.empty(201)

    async def remove(request: Request, conn: HTTPConnection) -> Response:
        deleted = await asyncio.to_thread(images.remove, request.params["name"], request.flag("force"),
                                          not request.flag("noprune"))
        for item in deleted:
            if "Untagged" in item:
                publish("image", "untag", item["Untagged"], {"name": item["Untagged"]})
            if "Deleted" in item:
                publish("image", "delete", item["Deleted"], {"name": item["Deleted"]})
        return Response.json(deleted)

    async def load(request: Request, conn: HTTPConnection) -> None:
        from engine.images.archive_load import load as load_archive

        tmp_dir = images.data_root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=tmp_dir, prefix="load-", suffix=".tar")
        try:
            total = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.body_chunks():
                    total += len(chunk)
                    if total > MAX_LOAD_BYTES:
                        raise InvalidParameter("image archive is too large")
                    out.write(chunk)
            result = await asyncio.to_thread(load_archive, images, Path(path))
        finally:
            os.unlink(path)
        for image_id in result.image_ids:
            publish("image", "load", image_id, {"name": image_id})
        await conn.start_stream(200, "application/json")
        for message in result.messages():
            await conn.write_chunk(json.dumps({"stream": message + "\n"}).encode() + b"\n")
        await conn.end_stream()

    async def save(request: Request, conn: HTTPConnection) -> None:
        from engine.images.archive_save import save as save_archive

        names = request.query.get("names") or ([request.params["name"]] if "name" in request.params else [])
        tmp_dir = images.data_root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=tmp_dir) as out:
            await asyncio.to_thread(save_archive, images, names, out)
            out.seek(0)
            await conn.start_stream(200, "application/x-tar")
            while chunk := await asyncio.to_thread(out.read, 1024 * 1024):
                await conn.write_chunk(chunk)
            await conn.end_stream()

    async def pull(request: Request, conn: HTTPConnection) -> None:
        from engine.images.pull_record import LeasedSink, record_pull
        from engine.images.reference import parse_docker_ref
        from engine.images.registry.client import RegistryClient
        from engine.images.registry.credentials import credentials_from_registry_auth_header
        from engine.images.registry.hosts import RegistryHosts

        if request.arg("fromSrc"):
            raise InvalidParameter("import with fromSrc is not supported yet; use `docker load`")
        name = request.arg("fromImage")
        if not name:
            raise InvalidParameter("fromImage or fromSrc is required")
        tag = request.arg("tag")
        wanted = f"{name}@{tag}" if tag and tag.startswith("sha256:") else (f"{name}:{tag}" if tag else name)
        ref = parse_docker_ref(wanted)
        hosts = RegistryHosts.from_daemon_config(registry_config() if registry_config else {})
        credentials = credentials_from_registry_auth_header(request.headers.get("x-registry-auth", ""))
        started = False
        pending: list[dict[str, Any]] = []

        def on_progress(event: Any) -> None:
            pending.append(event.to_json())

        async def flush() -> None:
            nonlocal started
            if not pending:
                return
            if not started:
                # Like dockerd: errors before the first progress line are plain HTTP errors.
                await conn.start_stream(200, "application/json")
                started = True
                await conn.write_chunk(_line({"status": f"Pulling from {ref.path}", "id": ref.tag or "latest"}))
            lines, pending[:] = list(pending), []
            await conn.write_chunk(b"".join(_line(m) for m in lines))

        async with RegistryClient(hosts, credentials) as client:
            with images.lease() as lease:
                task = asyncio.ensure_future(client.pull(ref, LeasedSink(images, lease),
                                                         platform=request.arg("platform") or None,
                                                         progress=on_progress))
                try:
                    while not task.done():
                        await asyncio.wait({task}, timeout=0.1)
                        await flush()
                    pulled = task.result()
                    await asyncio.to_thread(record_pull, images, pulled)
                except Exception as exc:
                    if not started:
                        raise
                    message = str(exc)
                    await conn.end_stream(_line({"errorDetail": {"message": message}, "error": message}))
                    return
                finally:
                    task.cancel()
        await flush()
        if not started:
            await conn.start_stream(200, "application/json")
        digest = pulled.index_digest or pulled.digest
        familiar = ref.familiar()
        publish("image", "pull", familiar, {"name": familiar})
        await conn.end_stream(_line({"status": f"Digest: {digest}"}) +
                              _line({"status": f"Status: Downloaded newer image for {familiar}"}))

    async def prune(request: Request, conn: HTTPConnection) -> Response:
        from engine.api.filters import parse_filters

        filters = parse_filters(request.arg("filters"), {"dangling", "until", "label", "label!"})
        if set(filters) - {"dangling"}:
            raise InvalidParameter("image prune supports only the dangling filter so far")
        dangling = filters.get("dangling", ["true"])[-1].lower() in ("1", "true")
        report = await asyncio.to_thread(images.prune, dangling)
        publish("image", "prune", "", {"reclaimed": str(report.get("SpaceReclaimed", 0))})
        return Response.json(report)

    router.add("POST", "/images/create", pull)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/json", list_)
    router.add("POST", "/images/load", load)
    router.add("GET", "/images/get", save)
    router.add("GET", "/images/{name*}/json", inspect)
    router.add("GET", "/images/{name*}/history", history)
    router.add("GET", "/images/{name*}/get", save)
    router.add("POST", "/images/{name*}/tag", tag)
    router.add("DELETE", "/images/{name*}", remove)

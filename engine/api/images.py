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

        matching = [t for t in tags if any(match(p, t) for p in filters["reference"])]
        if not matching:
            return False
        # moby lists only the names the filter matched (`docker images busybox` hides the image's other tags).
        summary["RepoTags"] = matching
        summary["RepoDigests"] = [d for d in summary.get("RepoDigests") or []
                                  if any(fnmatch.fnmatchcase(d.partition("@")[0], p) for p in filters["reference"])]
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


class ProgressStream:
    """A JSON-lines progress response (pull, push) written as events arrive.

    The stream starts with its first line, so an error raised before that is a
    plain HTTP error (dockerd's WriteFlusher behaves the same); after it, an error
    is the stream's last line, `{"errorDetail": ..., "error": ...}`.
    """

    def __init__(self, conn: HTTPConnection, first: dict[str, Any]) -> None:
        self._conn = conn
        self._first = first
        self._pending: list[dict[str, Any]] = []
        self.started = False

    def add(self, event: Any) -> None:
        self._pending.append(event.to_json())

    def add_message(self, message: dict[str, Any]) -> None:
        self._pending.append(message)

    async def begin(self) -> None:
        if not self.started:
            await self._conn.start_stream(200, "application/json")
            self.started = True
            await self._conn.write_chunk(_line(self._first))

    async def flush(self) -> None:
        if not self._pending:
            return
        await self.begin()
        lines, self._pending[:] = list(self._pending), []
        await self._conn.write_chunk(b"".join(_line(m) for m in lines))

    async def run(self, work: Any) -> Any:
        """Await `work` while flushing progress; None (stream ended) if it failed after the start."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.1)
                await self.flush()
            return task.result()
        except Exception as exc:
            await self.flush()
            if not self.started:
                raise
            message = str(exc)
            await self._conn.end_stream(_line({"errorDetail": {"message": message}, "error": message}))
            return None
        finally:
            task.cancel()

    async def finish(self, last: list[dict[str, Any]]) -> None:
        await self.flush()
        if not self.started:
            await self._conn.start_stream(200, "application/json")
        await self._conn.end_stream(b"".join(_line(m) for m in last))


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
        if not request.flag("all"):
            # Like dockerd: intermediate images (untagged, with a child: a build's steps) only with all=1.
            parents = {s.get("ParentId") for s in summaries}
            summaries = [s for s in summaries if s.get("RepoTags") or s.get("RepoDigests") or s["Id"] not in parents]
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

    async def _import(request: Request, conn: HTTPConnection) -> None:
        """`docker import`: the request body is the tarball (fromSrc=-), as dockerd's postImagesCreate."""
        from engine.images.archive_import import import_archive

        source = request.arg("fromSrc")
        if source != "-":
            raise InvalidParameter(f"importing from {source!r} is not supported by Berth: send the archive in the "
                                   "request (docker import FILE, or - for stdin)")
        repo, tag = request.arg("repo") or "", request.arg("tag") or ""
        target = f"{repo}:{tag}" if repo and tag else repo
        tmp_dir = images.data_root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=tmp_dir, prefix="import-", suffix=".tar")
        try:
            total = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.body_chunks():
                    total += len(chunk)
                    if total > MAX_LOAD_BYTES:
                        raise InvalidParameter("image archive is too large")
                    out.write(chunk)
            record = await asyncio.to_thread(import_archive, images, Path(path), request.query.get("changes") or [],
                                             request.arg("message") or "")
        finally:
            os.unlink(path)
        if target:
            await asyncio.to_thread(images.tag, record.id, target)
        publish("image", "import", record.id, {"name": target or record.id})
        await conn.start_stream(200, "application/json")
        await conn.write_chunk(json.dumps({"status": record.id}).encode() + b"\n")
        await conn.end_stream()

    async def pull(request: Request, conn: HTTPConnection) -> None:
        from engine.images.reference import parse_docker_ref
        from engine.images.registry.client import RegistryClient
        from engine.images.registry.credentials import credentials_from_registry_auth_header

        if request.arg("fromSrc"):
            await _import(request, conn)
            return
        name = request.arg("fromImage")
        if not name:
            raise InvalidParameter("fromImage or fromSrc is required")
        tag = request.arg("tag")
        wanted = f"{name}@{tag}" if tag and tag.startswith("sha256:") else (f"{name}:{tag}" if tag else name)
        ref = parse_docker_ref(wanted)
        # No tag anywhere: every tag of the repository (`docker pull --all-tags`), as dockerd does.
        all_tags = not tag and "@" not in name and ":" not in name.rpartition("/")[2]
        credentials = credentials_from_registry_auth_header(request.headers.get("x-registry-auth", ""))
        async with RegistryClient(_hosts(), credentials) as client:
            refs = [ref.with_tag(t) for t in sorted(await client.list_tags(ref.repository()))] if all_tags else [ref]
            if not refs:
                raise InvalidParameter(f"no tags in repository {ref.repository().familiar()}")
            # Like dockerd: errors before the first progress line are plain HTTP errors.
            stream = ProgressStream(conn, {"status": f"Pulling from {ref.path}", "id": refs[0].tag or "latest"})
            newer = False
            for number, each in enumerate(refs):
                if number:
                    stream.add_message({"status": f"Pulling from {each.path}", "id": each.tag})
                before = await asyncio.to_thread(_image_id_or_none, str(each))
                pulled = await _pull_one(client, stream, each, request.arg("platform") or None)
                if pulled is None:
                    return
                newer = newer or pulled.config.digest != before
                stream.add_message({"status": f"Digest: {pulled.index_digest or pulled.digest}"})
                publish("image", "pull", each.familiar(), {"name": each.familiar()})
        shown = ref.familiar_name if all_tags else ref.familiar()
        status = f"Downloaded newer image for {shown}" if newer else f"Image is up to date for {shown}"
        await stream.finish([{"status": f"Status: {status}"}])

    def _image_id_or_none(reference: str) -> str | None:
        from engine.images.errors import NotFound

        try:
            return str(images.resolve(reference))
        except NotFound:
            return None

    async def _pull_one(client: Any, stream: ProgressStream, ref: Any, platform: str | None) -> Any:
        """Pull and record one reference; None when it failed after the stream started (reported in it)."""
        from engine.images.pull_record import LeasedSink, record_pull
        from engine.images.registry.progress import PULLING_FS_LAYER

        with images.lease() as lease:
            fetched: list[str] = []

            def on_progress(event: Any) -> None:
                if event.status == PULLING_FS_LAYER:
                    fetched.append(event.id)
                stream.add(event)

            async def pull_and_record() -> Any:
                pulled = await client.pull(ref, LeasedSink(images, lease), platform=platform, progress=on_progress)
                await asyncio.to_thread(record_pull, images, pulled)
                # dockerd says "Pull complete" per layer once it is unpacked; Berth's
                # layers are usable once recorded (snapshots are made on first use).
                for layer_id in fetched:
                    stream.add_message({"status": "Pull complete", "progressDetail": {}, "id": layer_id})
                return pulled

            return await stream.run(pull_and_record())

    async def push(request: Request, conn: HTTPConnection) -> None:
        from engine.images.push_plan import tags_to_push
        from engine.images.registry.client import RegistryClient
        from engine.images.registry.credentials import credentials_from_registry_auth_header

        credentials = credentials_from_registry_auth_header(request.headers.get("x-registry-auth", ""))
        targets = await asyncio.to_thread(tags_to_push, images, request.params["name"], request.arg("tag") or None)
        repository = targets[0].repository()
        stream = ProgressStream(conn, {"status": f"The push refers to repository [{repository.name}]"})
        await stream.begin()
        async with RegistryClient(_hosts(), credentials) as client:
            for target in targets:
                pushed = await _push_one(client, stream, target)
                if pushed is None:
                    return
                digest, size = pushed
                publish("image", "push", target.familiar(), {"name": target.familiar()})
                stream.add_message({"status": f"{target.tag}: digest: {digest} size: {size}"})
                stream.add_message({"progressDetail": {}, "aux": {"Tag": target.tag, "Digest": digest, "Size": size}})
        await stream.finish([])

    async def _push_one(client: Any, stream: ProgressStream, target: Any) -> tuple[str, int] | None:
        """Push one tag and record its RepoDigest: (digest, manifest size), or None when it
        failed (the error is the stream's last line)."""
        from engine.images.push_plan import plan_push, record_push

        scratch: list[str] = []
        with images.lease() as lease:
            async def push_and_record() -> tuple[str, int]:
                plan = await asyncio.to_thread(plan_push, images, lease, target)
                scratch.extend(plan.scratch)

                def on_progress(event: Any) -> None:
                    message = event.to_json()
                    message["id"] = plan.progress_ids.get(event.id, event.id)  # dockerd names layers by diff_id
                    stream.add_message(message)

                result = await client.push(plan.target, plan.manifest, plan.media_type, images.content,
                                           mount_from=plan.mount_from, progress=on_progress)
                await asyncio.to_thread(record_push, images, plan, result.digest)
                return result.digest, len(plan.manifest)

            pushed: tuple[str, int] | None = await stream.run(push_and_record())
        await asyncio.to_thread(images.discard_unreferenced, set(scratch))
        return pushed

    async def auth(request: Request, conn: HTTPConnection) -> Response:
        from engine.images.registry.client import RegistryClient
        from engine.images.registry.credentials import Credentials

        body = await request.json() or {}
        if not isinstance(body, dict):
            raise InvalidParameter("the login request body must be a JSON object")
        credentials = Credentials(username=str(body.get("username") or ""), password=str(body.get("password") or ""),
                                  identity_token=str(body.get("identitytoken") or ""))
        server = str(body.get("serveraddress") or "https://index.docker.io/v1/")
        async with RegistryClient(_hosts()) as client:
            result = await client.login(server, credentials)
        return Response.json({"Status": result.status, "IdentityToken": result.identity_token})

    async def search(request: Request, conn: HTTPConnection) -> Response:
        from engine.api.filters import parse_filters
        from engine.images.search import search_registry

        term = request.arg("term")
        if not term:
            raise InvalidParameter("term is required")
        filters = parse_filters(request.arg("filters"), {"is-official", "is-automated", "stars"})
        try:
            limit = int(request.arg("limit") or 25)
        except ValueError:
            raise InvalidParameter(f"invalid limit: {request.arg('limit')}") from None
        return Response.json(await search_registry(_hosts(), term, limit, filters))

    async def distribution(request: Request, conn: HTTPConnection) -> Response:
        from engine.images.reference import parse_docker_ref
        from engine.images.registry.client import RegistryClient
        from engine.images.registry.credentials import credentials_from_registry_auth_header

        ref = parse_docker_ref(request.params["name"])
        credentials = credentials_from_registry_auth_header(request.headers.get("x-registry-auth", ""))
        async with RegistryClient(_hosts(), credentials) as client:
            found = await client.inspect(ref)
        descriptor = found.descriptor
        return Response.json({
            "Descriptor": {"mediaType": descriptor.media_type, "digest": descriptor.digest, "size": descriptor.size},
            "Platforms": [{key: value for key, value in (("architecture", p.architecture), ("os", p.os),
                                                        ("variant", p.variant)) if value}
                          for p in found.platforms],
        })

    async def prune(request: Request, conn: HTTPConnection) -> Response:
        from engine.api.filters import parse_filters

        filters = parse_filters(request.arg("filters"), {"dangling", "until", "label", "label!"})
        if set(filters) - {"dangling"}:
            raise InvalidParameter("image prune supports only the dangling filter so far")
        dangling = filters.get("dangling", ["true"])[-1].lower() in ("1", "true")
        report = await asyncio.to_thread(images.prune, dangling)
        publish("image", "prune", "", {"reclaimed": str(report.get("SpaceReclaimed", 0))})
        return Response.json(report)

    def _hosts() -> Any:
        from engine.images.registry.hosts import RegistryHosts

        return RegistryHosts.from_daemon_config(registry_config() if registry_config else {})

    router.add("POST", "/images/create", pull)
    router.add("POST", "/auth", auth)
    router.add("GET", "/images/search", search)
    router.add("GET", "/distribution/{name*}/json", distribution)
    router.add("POST", "/images/{name*}/push", push)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/json", list_)
    router.add("POST", "/images/load", load)
    router.add("GET", "/images/get", save)
    router.add("GET", "/images/{name*}/json", inspect)
    router.add("GET", "/images/{name*}/history", history)
    router.add("GET", "/images/{name*}/get", save)
    router.add("POST", "/images/{name*}/tag", tag)
    router.add("DELETE", "/images/{name*}", remove)

"""The distribution-spec endpoints of one repository on one registry endpoint.

Each method is one HTTP exchange (or a paginated series), named after the spec's
section: pulling manifests and blobs, checking blob existence, pushing blobs
(monolithic, chunked, cross-repository mount), pushing manifests, listing tags.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp

from . import mediatypes
from .errors import DigestMismatch, UploadError
from .hosts import Endpoint
from .manifests import compute_digest, detect_media_type, verify_digest
from .transport import RegistryTransport

log = logging.getLogger(__name__)

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# Manifests are small; a bound stops a hostile registry from exhausting memory
# (containerd's limit is 4 MiB, distribution-spec suggests registries accept 4 MiB).
MAX_MANIFEST_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class BlobResponse:
    """An open blob body; `start` is where it begins (the Range we asked for, or 0)."""

    response: aiohttp.ClientResponse
    start: int
    total: int | None


class Repository:
    """One repository (`library/debian`) reached through one endpoint."""

    def __init__(self, transport: RegistryTransport, endpoint: Endpoint, path: str) -> None:
        self.transport = transport
        self.endpoint = endpoint
        self.path = path
        self.pull_scope = f"repository:{path}:pull"
        self.push_scopes = (f"repository:{path}:pull,push",)

    def _url(self, suffix: str) -> str:
        return f"/v2/{self.path}/{suffix}"

    async def get_manifest(self, reference: str) -> FetchedManifest:
        """GET a manifest by tag or digest, verifying what the spec lets us verify.

        The body must hash to the requested digest (when pulling by digest) and to the
        Docker-Content-Digest header (when the registry sends one).
        """
        async with self.transport.request(
            self.endpoint,
            "GET",
            self._url(f"manifests/{reference}"),
            scopes=(self.pull_scope,),
            headers={"Accept": mediatypes.MANIFEST_ACCEPT},
            what=f"manifest {reference}",
        ) as response:
            length = response.content_length
            if length is not None and length > MAX_MANIFEST_SIZE:
                raise UploadError(f"manifest {reference} is too large ({length} bytes)")
            data = await response.content.read(MAX_MANIFEST_SIZE + 1)
            if len(data) > MAX_MANIFEST_SIZE:
                raise UploadError(f"manifest {reference} is too large")
            header_digest = response.headers.get("Docker-Content-Digest")
            content_type = response.headers.get("Content-Type")
        if ":" in reference:
            verify_digest(data, reference, f"manifest {reference}")
            digest = reference
        elif header_digest:
            verify_digest(data, header_digest, f"manifest {reference} (Docker-Content-Digest)")
            digest = header_digest
        else:
            digest = compute_digest(data)
        return FetchedManifest(data, detect_media_type(data, content_type), digest)

    async def head_manifest(self, reference: str) -> str | None:
        """The digest of a manifest, or None if the registry does not have it."""
        async with self.transport.request(
            self.endpoint,
            "HEAD",
            self._url(f"manifests/{reference}"),
            scopes=(self.pull_scope,),
            headers={"Accept": mediatypes.MANIFEST_ACCEPT},
            ok=(200, 404),
        ) as response:
            if response.status == 404:
                return None
            return response.headers.get("Docker-Content-Digest")

    @asynccontextmanager
    async def open_blob(self, digest: str, offset: int = 0) -> AsyncIterator[BlobResponse]:
        """GET a blob, from `offset` with a Range request when resuming.

        A registry may ignore Range and answer 200 with the whole blob (the spec makes
        Range support optional): `start` says which one we got.
        """
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        async with self.transport.request(
            self.endpoint,
            "GET",
            self._url(f"blobs/{digest}"),
            scopes=(self.pull_scope,),
            headers=headers,
            ok=(200, 206),
            what=f"blob {digest}",
        ) as response:
            start = 0
            total = response.content_length
            if response.status == 206:
                start, total = _content_range(response.headers.get("Content-Range", ""), offset)
            yield BlobResponse(response, start, total)

    async def blob_size(self, digest: str) -> int | None:
        """HEAD a blob: its size if the repository has it, else None ("Checking if content exists")."""
        async with self.transport.request(
            self.endpoint,
            "HEAD",
            self._url(f"blobs/{digest}"),
            scopes=self.push_scopes,
            ok=(200, 404),
        ) as response:
            if response.status == 404:
                return None
            return response.content_length

    async def start_upload(self, mount: str | None = None, mount_from: str | None = None) -> str | None:
        """POST /blobs/uploads/: the session's Location, or None when a mount succeeded.

        With `mount`+`from` the registry answers 201 if it linked the blob from the other
        repository, or 202 with a plain upload session if it could not
        (distribution-spec "Mounting a blob from another repository").
        """
        suffix = "blobs/uploads/"
        scopes: tuple[str, ...] = self.push_scopes
        if mount and mount_from:
            suffix += "?" + urlencode({"mount": mount, "from": mount_from})
            scopes = (*scopes, f"repository:{mount_from}:pull")
        async with self.transport.request(
            self.endpoint, "POST", self._url(suffix), scopes=scopes, ok=(201, 202), what="blob upload"
        ) as response:
            if response.status == 201:
                return None
            location = response.headers.get("Location")
        if not location:
            raise UploadError("registry started an upload without a Location")
        return self._absolute(location)

    async def upload_chunk(self, location: str, data: bytes, start: int) -> str:
        """PATCH one chunk; returns the next Location (distribution-spec "Pushing a blob in chunks")."""
        end = start + len(data) - 1
        headers = {
            "Content-Type": "application/octet-stream",
            # The spec's Content-Range here has no "bytes " prefix: "<start>-<end>".
            "Content-Range": f"{start}-{end}",
            "Content-Length": str(len(data)),
        }
        async with self.transport.request(
            self.endpoint,
            "PATCH",
            location,
            scopes=self.push_scopes,
            headers=headers,
            data=data,
            ok=(202,),
            what="blob chunk upload",
        ) as response:
            acknowledged = response.headers.get("Range", "")
            next_location = response.headers.get("Location") or location
        if acknowledged and not acknowledged.endswith(f"-{end}"):
            raise UploadError(f"registry acknowledged range {acknowledged!r}, expected 0-{end}")
        return self._absolute(next_location)

    async def finish_upload(
        self, location: str, digest: str, data: bytes | Callable[[], Any] | None = None, size: int = 0
    ) -> None:
        """PUT <location>?digest=<digest>, with the whole blob (monolithic) or the last chunk."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size if data else 0)}
        async with self.transport.request(
            self.endpoint,
            "PUT",
            _add_query(location, digest=digest),
            scopes=self.push_scopes,
            headers=headers,
            data=data,
            ok=(201,),
            what=f"blob upload {digest}",
        ) as response:
            stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise DigestMismatch(f"registry stored blob {stored}, we uploaded {digest}")

    async def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or digest; returns its digest (checked against the registry's)."""
        digest = compute_digest(data)
        async with self.transport.request(
            self.endpoint,
            "PUT",
            self._url(f"manifests/{reference}"),
            scopes=self.push_scopes,
            headers={"Content-Type": media_type},
            data=data,
            ok=(201,),
            what=f"manifest {reference}",
        ) as response:
            stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise DigestMismatch(f"registry stored manifest {stored}, we sent {digest}")
        return digest

    async def tags(self, page_size: int | None = None) -> list[str]:
        """All tags, following `Link: <...>; rel="next"` pages (distribution-spec "Listing Tags")."""
        url = self._url("tags/list")
        if page_size:
            url += f"?n={page_size}"
        found: list[str] = []
        while url:
            async with self.transport.request(
                self.endpoint, "GET", url, scopes=(self.pull_scope,), what=f"tags of {self.path}"
            ) as response:
                document = await response.json(content_type=None)
                link = response.headers.get("Link", "")
            found.extend((document or {}).get("tags") or [])
            match = _LINK_NEXT.search(link)
            url = match.group(1) if match else ""
        return found

    def _absolute(self, location: str) -> str:
        return urljoin(self.endpoint.url + "/", location)


async def catalog(transport: RegistryTransport, endpoint: Endpoint, page_size: int | None = None) -> list[str]:
    """GET /v2/_catalog with pagination (optional in the spec; docker-registry has it)."""
    url = "/v2/_catalog" + (f"?n={page_size}" if page_size else "")
    found: list[str] = []
    while url:
        async with transport.request(
            endpoint, "GET", url, scopes=("registry:catalog:*",), what="catalog"
        ) as response:
            document = await response.json(content_type=None)
            link = response.headers.get("Link", "")
        found.extend((document or {}).get("repositories") or [])
        match = _LINK_NEXT.search(link)
        url = match.group(1) if match else ""
    return found


def _content_range(header: str, offset: int) -> tuple[int, int | None]:
    """Parse `bytes <start>-<end>/<total>`; fall back to the offset we asked for."""
    match = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", header)
    if not match:
        return offset, None
    total = match.group(3)
    return int(match.group(1)), int(total) if total != "*" else None


def _add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))

"""`docker search` (Engine API `GET /images/search`).

dockerd asks the index's v1 search endpoint (`/v1/search?q=&n=`), Docker Hub's
when the term names no registry.  Registries of the distribution-spec have no
search, so for a term naming another registry (`localhost:5000/busy`) Berth
lists that registry's `/v2/_catalog` and keeps the repositories whose name
contains the query.  Nothing hangs: the index gets a short timeout, and an
unreachable Docker Hub answers an empty list (offline setups are normal);
an unreachable named registry is an error that says so.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from engine.images.errors import InvalidParameter
from engine.images.reference import DEFAULT_DOMAIN
from engine.images.registry.client import RegistryClient
from engine.images.registry.errors import RegistryError, RegistryUnavailable
from engine.images.registry.hosts import RegistryHosts

log = logging.getLogger(__name__)

INDEX_URL = "https://index.docker.io/v1/search"
TIMEOUT = aiohttp.ClientTimeout(total=8, connect=4)
MAX_LIMIT = 100


def split_term(term: str) -> tuple[str, str]:
    """(registry domain, query): `localhost:5000/busy` → ("localhost:5000", "busy")."""
    first, slash, rest = term.partition("/")
    if slash and (first == "localhost" or "." in first or ":" in first):
        return first, rest
    return DEFAULT_DOMAIN, term


async def search_registry(
    hosts: RegistryHosts, term: str, limit: int, filters: dict[str, list[str]]
) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit {limit} is outside the range of [1, {MAX_LIMIT}]")
    domain, query = split_term(term)
    if domain == DEFAULT_DOMAIN:
        results = await _search_hub(query, limit)
    else:
        results = await _search_catalog(hosts, domain, query)
    return [r for r in results if _keep(r, filters)][:limit]


async def _search_hub(query: str, limit: int) -> list[dict[str, Any]]:
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(
            INDEX_URL, params={"q": query, "n": str(limit)}
        ) as response:
            if response.status != 200:
                log.info("search index answered %d", response.status)
                return []
            document = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.info("search index unreachable (%s): no results", exc.__class__.__name__)
        return []
    return [_result(item) for item in (document or {}).get("results") or [] if isinstance(item, dict)]


async def _search_catalog(hosts: RegistryHosts, domain: str, query: str) -> list[dict[str, Any]]:
    async with RegistryClient(hosts, retries=0, timeout=TIMEOUT) as client:
        try:
            names = await client.catalog(domain)
        except RegistryUnavailable as exc:
            raise RegistryUnavailable(f"cannot search {domain}: {exc}") from exc
        except RegistryError as exc:
            raise RegistryError(f"cannot search {domain}: {exc}") from exc
    return [_result({"name": f"{domain}/{name}"}) for name in sorted(names) if query.lower() in name.lower()]


def _result(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(item.get("name") or ""),
        "description": str(item.get("description") or ""),
        "star_count": int(item.get("star_count") or 0),
        "is_official": bool(item.get("is_official")),
        "is_automated": bool(item.get("is_automated")),
    }


def _keep(result: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, field in (("is-official", "is_official"), ("is-automated", "is_automated")):
        for value in filters.get(key, []):
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidParameter(f"invalid filter '{key}={value}'")
            if result[field] != (value.lower() in ("true", "1")):
                return False
    for value in filters.get("stars", []):
        try:
            wanted = int(value)
        except ValueError:
            raise InvalidParameter(f"invalid filter 'stars={value}'") from None
        if result["star_count"] < wanted:
            return False
    return True

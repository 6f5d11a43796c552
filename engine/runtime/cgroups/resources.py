"""Shared pieces of turning OCI ``linux.resources`` into cgroup file writes.

The plans are pure: a list of :class:`FileWrite` in the order they must be
written, computed without touching the host, so they are unit-tested
without root.  The managers (v1.py, v2.py) only carry them out.
"""

from __future__ import annotations

from engine.runtime.abcs import Mapping
from engine.runtime.cgroups.errors import InvalidResources
from engine.runtime.lazylog import getLogger
from engine.runtime.record import record

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)


@record(frozen=True)
class FileWrite:
    """Write ``value`` to the interface file ``name``.

    ``controller``: on v1, the controller whose hierarchy holds the file; on v2,
    the controller that must be enabled for the file to exist ("" for core
    files).  ``fallbacks``: (name, value) pairs tried in order when the kernel
    lacks ``name`` (e.g. blkio.weight without CFQ, then blkio.bfq.weight).
    """

    controller: str
    name: str
    value: str
    fallbacks: tuple[tuple[str, str], ...] = ()


def section(resources: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = resources.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidResources(f"linux.resources.{key} must be an object, got {type(value).__name__}")
    return value


def integer(sec: Mapping[str, Any], key: str, where: str) -> int | None:
    value = sec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidResources(f"linux.resources.{where}.{key} must be an integer, got {value!r}")
    return value


def ignored(where: str, key: str, why: str) -> None:
    log.warning("linux.resources.%s.%s ignored: %s", where, key, why)


def device_entries(block: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = block.get(key) or []
    if not isinstance(entries, list):
        raise InvalidResources(f"linux.resources.blockIO.{key} must be a list")
    for e in entries:
        if not isinstance(e, Mapping) or not isinstance(e.get("major"), int) or not isinstance(e.get("minor"), int):
            raise InvalidResources(f"linux.resources.blockIO.{key} entries need integer major and minor: {e!r}")
    return entries


def hugepage_limits(resources: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(pageSize, limit) pairs; pageSize is the kernel's spelling, e.g. "2MB" (hugetlb.2MB.*)."""
    out = []
    for entry in resources.get("hugepageLimits") or []:
        size, limit = entry.get("pageSize"), entry.get("limit")
        if not isinstance(size, str) or not size or "/" in size or not isinstance(limit, int):
            raise InvalidResources(f"invalid linux.resources.hugepageLimits entry: {entry!r}")
        out.append((size, limit))
    return out


def unified_entries(resources: Mapping[str, Any]) -> list[tuple[str, str]]:
    unified = resources.get("unified") or {}
    if not isinstance(unified, Mapping):
        raise InvalidResources("linux.resources.unified must be an object")
    out = []
    for key, value in unified.items():
        # Keys name interface files of the container's own cgroup, nothing else.
        if not isinstance(key, str) or "/" in key or key.startswith(".") or "." not in key:
            raise InvalidResources(f"invalid linux.resources.unified key: {key!r}")
        out.append((key, str(value)))
    return out

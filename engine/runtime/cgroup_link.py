"""How the lifecycle reaches the cgroup manager (engine/runtime/cgroups, another module's job).

The manager may be missing from a partial build: then containers that ask
for nothing cgroup-related still run (with a warning), and every verb that
needs a cgroup (pause, resume, update, resources) fails with a clear
``Unsupported`` error instead of pretending.
"""

from __future__ import annotations

from .abcs import Mapping
from .errors import Unsupported
from .lazylog import getLogger

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # CgroupHandle is a structural type for mypy; nothing checks it at run time

log = getLogger(__name__)


class CgroupHandle(Protocol):
    """The part of engine.runtime.cgroups.Cgroup the lifecycle uses."""

    @property
    def path(self) -> str: ...

    def create(self) -> None: ...
    def add_process(self, pid: int) -> None: ...
    def join_plan(self) -> tuple[str | None, list[str]]: ...
    def set_resources(self, resources: Mapping[str, Any]) -> None: ...
    def freeze(self) -> None: ...
    def thaw(self) -> None: ...
    def is_frozen(self) -> bool: ...
    def pids(self) -> list[int]: ...
    def stats(self) -> Any: ...  # engine.runtime.cgroups.stats.CgroupStats
    def destroy(self) -> None: ...


def open_container_cgroup(cgroups_path: str | None, container_id: str) -> CgroupHandle | None:
    try:
        from .cgroups import open_cgroup  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        log.warning("no cgroup manager available (%s): container %s runs without a cgroup", exc, container_id)
        return None
    handle: CgroupHandle = open_cgroup(cgroups_path, container_id)
    return handle


def require_cgroup(handle: CgroupHandle | None, what: str) -> CgroupHandle:
    if handle is None:
        raise Unsupported(f"{what} needs a cgroup, and no cgroup manager is available in this build")
    return handle


def cgroup_path_of(handle: CgroupHandle | None) -> str | None:
    return None if handle is None else handle.path

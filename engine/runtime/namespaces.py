"""Which namespaces a container gets: new ones (unshare) or existing ones (setns by path).

runtime-spec config-linux.md#namespaces: an entry without ``path`` means a new
namespace, with ``path`` means join that one; a type not listed is inherited
from the runtime.  The user namespace is handled apart because its id maps
must be written by the parent (proc(5) user_namespaces: the writer needs
CAP_SETUID in the *parent* user namespace).
"""

from __future__ import annotations

import os

from . import syscalls as sc
from .abcs import Mapping, Sequence
from .errors import InvalidSpec
from .record import record, record_field

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

CLONE_FLAGS: dict[str, int] = {
    "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET,
    "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS,
    "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME,
}

# The names under /proc/<pid>/ns/ for each OCI type.
PROC_NAMES: dict[str, str] = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

# Join order: user first (it decides what we may do in the others), mount
# last (after it, host paths of other namespace files may be invisible; the
# fds are opened beforehand anyway).  runc's nsexec joins in the same spirit.
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


@record
class NamespacePlan:
    new_user: bool = False
    new_flags: int = 0  # everything new except the user namespace
    join: list[tuple[str, str]] = record_field(default_factory=list)  # (type, path), in join order
    new_types: list[str] = record_field(default_factory=list)

    def has_new(self, ns_type: str) -> bool:
        return ns_type in self.new_types

    def creates_pid_namespace(self) -> bool:
        return "pid" in self.new_types


def plan_namespaces(namespaces: Sequence[Mapping[str, Any]]) -> NamespacePlan:
    plan = NamespacePlan()
    seen: set[str] = set()
    joins: dict[str, str] = {}
    for ns in namespaces:
        ns_type = str(ns.get("type"))
        if ns_type not in CLONE_FLAGS:
            raise InvalidSpec(f"unknown namespace type {ns_type!r}")
        if ns_type in seen:
            raise InvalidSpec(f"namespace {ns_type} listed twice")
        seen.add(ns_type)
        path = ns.get("path")
        if path:
            joins[ns_type] = str(path)
        elif ns_type == "user":
            plan.new_user = True
            plan.new_types.append(ns_type)
        else:
            plan.new_flags |= CLONE_FLAGS[ns_type]
            plan.new_types.append(ns_type)
    plan.join = [(t, joins[t]) for t in _JOIN_ORDER if t in joins]
    return plan


def open_join_fds(plan: NamespacePlan) -> list[tuple[str, int]]:
    """Open every namespace to join before any setns, so paths resolve in the runtime's view."""
    fds: list[tuple[str, int]] = []
    for ns_type, path in plan.join:
        try:
            fds.append((ns_type, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
        except OSError as exc:
            for _, fd in fds:
                os.close(fd)
            raise InvalidSpec(f"cannot open {ns_type} namespace {path}: {exc.strerror}") from None
    return fds


def join_namespaces(fds: Sequence[tuple[str, int]]) -> None:
    for ns_type, fd in fds:
        try:
            sc.setns(fd, CLONE_FLAGS[ns_type])
        except OSError as exc:
            raise OSError(exc.errno, f"setns({ns_type}): {exc.strerror}") from None
        finally:
            os.close(fd)


def format_id_map(mappings: Sequence[Mapping[str, Any]]) -> str:
    """OCI uidMappings/gidMappings -> the text of /proc/<pid>/uid_map."""
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def write_id_maps(pid: int, uid_maps: Sequence[Mapping[str, Any]], gid_maps: Sequence[Mapping[str, Any]]) -> None:
    """Written by the parent, which holds CAP_SETUID/CAP_SETGID in the parent user namespace."""
    if uid_maps:
        with open(f"/proc/{pid}/uid_map", "w", encoding="ascii") as f:
            f.write(format_id_map(uid_maps))
    if gid_maps:
        with open(f"/proc/{pid}/gid_map", "w", encoding="ascii") as f:
            f.write(format_id_map(gid_maps))


def namespace_paths(pid: int, types: Sequence[str]) -> dict[str, str]:
    """runtime paths of a container's namespaces, kept in state for exec and `state`."""
    return {t: f"/proc/{pid}/ns/{PROC_NAMES[t]}" for t in types}

"""Turning OCI mount options into mount(2) flags (pure functions).

runtime-spec config.md#mounts defers to mount(8) option names; the table
matches runc's libcontainer/specconv mountPropagationMapping and flag table.
"""

from __future__ import annotations

import os

from . import syscalls as sc
from .abcs import Iterable, Mapping
from .record import record, record_field

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

# option -> (clear?, flag).  "clear" options (rw, suid, ...) remove a flag.
_FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, sc.MS_RDONLY),
    "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID),
    "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV),
    "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC),
    "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS),
    "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK),
    "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME),
    "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME),
    "nodiratime": (False, sc.MS_NODIRATIME),
    "relatime": (False, sc.MS_RELATIME),
    "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME),
    "nostrictatime": (True, sc.MS_STRICTATIME),
    "bind": (False, sc.MS_BIND),
    "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
}

_PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# Flags that a bind mount ignores on the first call and that must be applied
# by a second MS_REMOUNT|MS_BIND call (mount(2): "the remaining bits ... are
# ignored" for MS_BIND).  runc does the same remount in mountToRootfs.
_REMOUNT_FLAGS = (
    sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME | sc.MS_NODIRATIME
    | sc.MS_RELATIME | sc.MS_STRICTATIME | sc.MS_NOSYMFOLLOW
)


@record
class MountOptions:
    flags: int = 0
    propagation: list[int] = record_field(default_factory=list)
    data: list[str] = record_field(default_factory=list)

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)

    @property
    def needs_remount(self) -> bool:
        """True if a bind mount carries flags only a remount applies."""
        return self.is_bind and bool(self.flags & _REMOUNT_FLAGS)

    @property
    def data_string(self) -> str | None:
        return ",".join(self.data) or None


def parse_mount_options(options: Iterable[str], mount_type: str | None = None) -> MountOptions:
    parsed = MountOptions()
    for option in options:
        if option in _FLAGS:
            clear, flag = _FLAGS[option]
            if clear:
                parsed.flags &= ~flag
            else:
                parsed.flags |= flag
        elif option in _PROPAGATION:
            parsed.propagation.append(_PROPAGATION[option])
        else:
            # Anything else is filesystem data (size=, mode=, newinstance...).
            parsed.data.append(option)
    if mount_type == "bind":
        # runtime-spec: type "bind" without a bind option still means a bind mount.
        parsed.flags |= sc.MS_BIND
    return parsed


def propagation_flag(name: str) -> int:
    """rootfsPropagation value -> flag (config-linux.md#rootfs-mount-propagation)."""
    try:
        return _PROPAGATION[name]
    except KeyError:
        raise ValueError(f"unknown propagation {name!r}") from None


def remount_flags(parsed: MountOptions) -> int:
    return sc.MS_REMOUNT | sc.MS_BIND | (parsed.flags & _REMOUNT_FLAGS)


@record(frozen=True)
class MountCall:
    """One mount(2) call; ``keep_locked`` marks a bind remount that must keep kernel-locked flags."""

    source: str | None
    target: str
    fstype: str | None
    flags: int
    data: str | None = None
    keep_locked: bool = False


@record
class MountPlan:
    """What one config.json mount entry turns into (``kind``: bind, cgroup or filesystem)."""

    kind: str
    source: str
    options: MountOptions
    calls: list[MountCall]  # the main mount (none for cgroup: see rootfs.mount_cgroupfs) and its remount
    propagation: list[MountCall]


def plan_mount(entry: Mapping[str, Any], dest: str, bundle: str) -> MountPlan:
    """Pure: an OCI mount entry (config.md#mounts) with its resolved host destination -> mount calls.

    A bind source relative to nothing is relative to the bundle (runc's behaviour);
    flags other than bind/rec on a bind mount need a second MS_REMOUNT call.
    """
    mount_type = entry.get("type") or None
    options = parse_mount_options(entry.get("options", []) or [], mount_type)
    raw_source = entry.get("source")
    propagation = [MountCall(None, dest, None, flag) for flag in options.propagation]
    if options.is_bind:
        source = str(raw_source)
        if not os.path.isabs(source):
            source = os.path.join(bundle, source)
        calls = [MountCall(source, dest, None, options.flags & (sc.MS_BIND | sc.MS_REC))]
        if options.needs_remount:
            calls.append(MountCall(None, dest, None, remount_flags(options), keep_locked=True))
        return MountPlan("bind", source, options, calls, propagation)
    if mount_type == "cgroup":
        return MountPlan("cgroup", str(raw_source or "cgroup"), options, [], propagation)
    source = str(raw_source) if raw_source else str(mount_type)
    call = MountCall(source, dest, str(mount_type), options.flags & ~sc.MS_REMOUNT, options.data_string)
    return MountPlan("filesystem", source, options, [call], propagation)

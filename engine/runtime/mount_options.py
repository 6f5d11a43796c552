"""Turning OCI mount options into mount(2) flags (pure functions).

runtime-spec config.md#mounts defers to mount(8) option names; the table
matches runc's libcontainer/specconv mountPropagationMapping and flag table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import syscalls as sc

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


@dataclass
class MountOptions:
    flags: int = 0
    propagation: list[int] = field(default_factory=list)
    data: list[str] = field(default_factory=list)

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

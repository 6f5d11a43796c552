"""The `local` driver's options (`type`, `device`, `o`, `size`) and the mounts they describe.

Docker's local driver hands `type`/`device`/`o` to mount(2) the way
mount(8) would: flag words in `o` become MS_* flags, the rest is the
filesystem's data string (moby volume/local/local_unix.go + moby/sys/mount).
So `type=tmpfs,device=tmpfs,o=size=64m` is a tmpfs and
`type=none,device=/srv/x,o=bind` a bind mount of a host directory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.runtime import syscalls
from engine.snapshots.errors import MountError
from engine.snapshots.mounts import is_mounted, unmount
from engine.volumes.errors import InvalidParameter, MountFailed

log = logging.getLogger(__name__)

VALID_OPTIONS = ("type", "o", "device", "size")
# An option that only makes sense together with others (moby's mandatoryOpts).
_REQUIRES = {"device": ("type",), "type": ("device",), "o": ("device", "type")}

# mount(8) words that are flags, not filesystem data: (set, clear).
_FLAGS: dict[str, tuple[int, int]] = {
    "ro": (syscalls.MS_RDONLY, 0),
    "rw": (0, syscalls.MS_RDONLY),
    "nosuid": (syscalls.MS_NOSUID, 0),
    "suid": (0, syscalls.MS_NOSUID),
    "nodev": (syscalls.MS_NODEV, 0),
    "dev": (0, syscalls.MS_NODEV),
    "noexec": (syscalls.MS_NOEXEC, 0),
    "exec": (0, syscalls.MS_NOEXEC),
    "sync": (syscalls.MS_SYNCHRONOUS, 0),
    "async": (0, syscalls.MS_SYNCHRONOUS),
    "dirsync": (syscalls.MS_DIRSYNC, 0),
    "noatime": (syscalls.MS_NOATIME, 0),
    "atime": (0, syscalls.MS_NOATIME),
    "nodiratime": (syscalls.MS_NODIRATIME, 0),
    "diratime": (0, syscalls.MS_NODIRATIME),
    "relatime": (syscalls.MS_RELATIME, 0),
    "norelatime": (0, syscalls.MS_RELATIME),
    "strictatime": (syscalls.MS_STRICTATIME, 0),
    "bind": (syscalls.MS_BIND, 0),
    "rbind": (syscalls.MS_BIND | syscalls.MS_REC, 0),
    "defaults": (0, 0),
}


def validate(opts: Mapping[str, str]) -> None:
    """Docker's checks at `volume create`, with its messages."""
    for key in opts:
        if key not in VALID_OPTIONS:
            raise InvalidParameter(f'invalid option: "{key}"')
    if opts.get("size"):
        # Quotas need XFS project quotas on the data root; Berth has none, and says so like Docker does.
        raise InvalidParameter("quota size requested but no quota support")
    for key in sorted(_REQUIRES):
        if key in opts:
            for required in _REQUIRES[key]:
                if required not in opts:
                    raise InvalidParameter(f'missing required option: "{required}"')
    parsed = LocalOptions.from_options(opts)
    if parsed.is_bind and not parsed.device.startswith("/"):
        raise InvalidParameter(f"invalid device for a bind-backed volume: {parsed.device!r} must be an absolute path")


@dataclass(frozen=True)
class LocalOptions:
    type: str = ""
    device: str = ""
    o: str = ""

    @classmethod
    def from_options(cls, opts: Mapping[str, str]) -> LocalOptions:
        return cls(type=opts.get("type", ""), device=opts.get("device", ""), o=opts.get("o", ""))

    @property
    def needs_mount(self) -> bool:
        """A plain volume is just its _data directory; one with a type or device is mounted on use."""
        return bool(self.type or self.device)

    @property
    def is_bind(self) -> bool:
        return "bind" in self.words or "rbind" in self.words

    @property
    def words(self) -> list[str]:
        return [w for w in self.o.split(",") if w]

    def flags_and_data(self) -> tuple[int, str]:
        flags, data = 0, []
        for word in self.words:
            known = _FLAGS.get(word)
            if known is None:
                data.append(word)
                continue
            flags = (flags | known[0]) & ~known[1]
        return flags, ",".join(data)


def mount(opts: LocalOptions, target: Path) -> None:
    """Mount the volume's backing filesystem on its _data directory."""
    flags, data = opts.flags_and_data()
    fstype = None if flags & syscalls.MS_BIND else opts.type
    try:
        syscalls.mount(opts.device, str(target), fstype, flags, data or None)
        if flags & syscalls.MS_BIND and flags & syscalls.MS_RDONLY:
            # mount(2) ignores MS_RDONLY when it creates a bind mount: read-only takes a remount.
            syscalls.mount(None, str(target), None, flags | syscalls.MS_REMOUNT)
    except OSError as exc:
        raise MountFailed(
            f"failed to mount local volume: mount {opts.device}:{target}, flags: {flags:#x}, data: {data}: "
            f"{os.strerror(exc.errno or 0)}"
        ) from exc
    log.info("mounted volume backing %s (type %r) on %s", opts.device, opts.type, target)


def unmount_if_mounted(target: Path) -> None:
    if not is_mounted(target):
        return
    try:
        unmount(target)
    except MountError as exc:
        raise MountFailed(str(exc)) from exc
    log.info("unmounted volume backing from %s", target)

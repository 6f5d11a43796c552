"""`VolumeOptions.Subpath`: a directory inside a volume, found without leaving the volume.

The kernel resolves it (openat2 with RESOLVE_IN_ROOT), so a symlink a
container planted in the volume (`sub -> /etc`, `sub -> ../../..`) resolves
inside the volume, never on the host; the host path is read back from the fd.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from engine.runtime import syscalls
from engine.volumes.errors import InvalidParameter

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS | syscalls.RESOLVE_NO_XDEV


def resolve_subpath(volume_root: Path, subpath: str) -> Path:
    """The host path of ``subpath`` inside ``volume_root``; it must exist."""
    root_fd = os.open(volume_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = syscalls.openat2(root_fd, subpath, os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE)
        except OSError as exc:
            reason = os.strerror(exc.errno or errno.EINVAL).lower()
            raise InvalidParameter(f"cannot access path {subpath} in the volume: {reason}") from exc
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        root = os.readlink(f"/proc/self/fd/{root_fd}")
    finally:
        os.close(root_fd)
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        # Cannot happen with RESOLVE_IN_ROOT; checked anyway because the answer is about to be mounted.
        raise InvalidParameter(f"subpath {subpath} resolves outside the volume")
    return Path(real)

"""`--user` strings resolved against the container's own /etc/passwd and /etc/group.

Docker accepts `uid`, `uid:gid`, `name`, `name:group` (and mixes); names are
looked up in the image's files, never the host's (moby's user.GetExecUser).
Paths are resolved inside the rootfs so an image's symlinked /etc cannot
point the lookup at host files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.runtime import syscalls


class UserError(ValueError):
    """A --user value that names no user or group in the image."""


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _entries(rootfs: str, path: str) -> list[list[str]]:
    try:
        fd = _open_in_root(rootfs, path)
        with open(fd, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []  # missing, or a symlink loop: the image has no usable file, like an empty one


def _open_in_root(rootfs: str, path: str) -> int:
    """``path`` opened for reading with the kernel resolving it inside ``rootfs`` (openat2 RESOLVE_IN_ROOT):
    a running container swapping /etc for a symlink between a check and the open cannot send it to the host."""
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return syscalls.openat2(root_fd, path.lstrip("/"), os.O_RDONLY | os.O_CLOEXEC, 0,
                                syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS)
    finally:
        os.close(root_fd)


def resolve_user(rootfs: str, spec: str, group_add: list[str] | None = None) -> ExecUser:
    user_part, _, group_part = (spec or "").partition(":")
    passwd = [e for e in _entries(rootfs, "/etc/passwd") if len(e) >= 7]
    groups = [e for e in _entries(rootfs, "/etc/group") if len(e) >= 3]

    uid, gid, home, name = 0, 0, "/", "root"
    if user_part:
        entry = next((e for e in passwd if e[0] == user_part), None)
        if entry is None and user_part.isdigit():
            entry = next((e for e in passwd if e[2] == user_part), None)
        if entry is not None:
            name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5] or "/"
        elif user_part.isdigit():
            uid, name = int(user_part), ""  # a bare uid needs no passwd entry; its group is 0, like docker's
        else:
            raise UserError(f"unable to find user {user_part}: no matching entries in passwd file")
    else:
        entry = next((e for e in passwd if e[2] == "0"), None)
        if entry is not None:
            home = entry[5] or "/"

    if group_part:
        gid = _group_id(groups, group_part)
    supplementary = sorted({int(g[2]) for g in groups if name and name in g[3].split(",") and int(g[2]) != gid})
    for extra in group_add or []:
        supplementary.append(_group_id(groups, extra))
    return ExecUser(uid, gid, supplementary, home)


def _group_id(groups: list[list[str]], spec: str) -> int:
    entry = next((g for g in groups if g[0] == spec), None)
    if entry is not None:
        return int(entry[2])
    if spec.isdigit():
        return int(spec)
    raise UserError(f"unable to find group {spec}: no matching entries in group file")

"""Setting up the container's process: user, environment, rlimits, umask, executable lookup.

These run in the container init (or an exec'd process) just before execve;
each maps one field of runtime-spec config.md#process.
"""

from __future__ import annotations

import os
import resource

from .abcs import Mapping, Sequence
from .errors import InvalidSpec, SetupFailed

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def environment(env: Sequence[str]) -> dict[str, str]:
    """process.env ("KEY=value" strings) -> dict; a later duplicate wins, like execve users expect."""
    result: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidSpec(f"invalid environment entry {item!r}")
        result[key] = value
    return result


def find_executable(name: str, env: Mapping[str, str], cwd: str) -> str:
    """Resolve args[0] like execvp(3) with the *container's* PATH, before the user process starts.

    runc checks this before signalling that the container is created, so a
    typo fails `create` instead of leaving a container that dies at `start`.
    """
    if "/" in name:
        path = name if os.path.isabs(name) else os.path.join(cwd, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        if os.path.exists(path):  # a directory or a non-executable file: execve's EACCES, as runc reports it
            raise SetupFailed(f'exec: "{name}": permission denied')
        raise SetupFailed(f'exec: "{name}": stat {path}: no such file or directory')
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SetupFailed(f'exec: "{name}": executable file not found in $PATH')


_RLIMIT_PREFIX = "RLIMIT_"


def apply_rlimits(rlimits: Sequence[Mapping[str, Any]]) -> None:
    """config.md#posix-process rlimits; an unknown type is an error, as the spec requires."""
    for rl in rlimits:
        name = str(rl.get("type", ""))
        number = getattr(resource, name, None) if name.startswith(_RLIMIT_PREFIX) else None
        if not isinstance(number, int):
            raise InvalidSpec(f"unknown rlimit type {name!r}")
        try:
            resource.setrlimit(number, (int(rl["soft"]), int(rl["hard"])))
        except (ValueError, OSError) as exc:
            raise SetupFailed(f"setrlimit {name} {rl['soft']}:{rl['hard']}: {exc}") from None


def change_user(user: Mapping[str, Any], in_user_ns_without_setgroups: bool = False) -> None:
    """setgroups, then setresgid, then setresuid (gid first: after setuid we could no longer change it)."""
    uid = int(user.get("uid", 0))
    gid = int(user.get("gid", 0))
    extra = [int(g) for g in user.get("additionalGids", []) or []]
    if not in_user_ns_without_setgroups:
        os.setgroups(extra)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def apply_umask(user: Mapping[str, Any]) -> None:
    umask = user.get("umask")
    # runc's default is 0022 when the spec does not say (libcontainer/init_linux.go).
    os.umask(int(umask) if umask is not None else 0o022)


def set_oom_score_adj(pid: int | str, value: int) -> None:
    with open(f"/proc/{pid}/oom_score_adj", "w", encoding="ascii") as f:
        f.write(str(value))


def apply_sysctl(sysctl: Mapping[str, str]) -> None:
    """linux.sysctl, written through the container's own /proc/sys (namespaced keys only)."""
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w", encoding="ascii") as f:
                f.write(str(value))
        except OSError as exc:
            raise SetupFailed(f"sysctl {key}={value}: {exc.strerror}") from None

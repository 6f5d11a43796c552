"""Removes the cgroup directories a bench run created, in every hierarchy, deepest first.

A directory is only rmdir'ed (never its processes killed): a non-empty one
is reported, so a leak shows up in the bench's output instead of being hidden.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# berthd nests --cgroup-parent under its own cgroup, which here is
# memory:/process_api/<id> (MACHINE-NOTES): look a few levels down.
_MAX_DEPTH = 4


def find_cgroups(name: str) -> list[Path]:
    found = []
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        depth = len(Path(top).relative_to(CGROUP_ROOT).parts)
        if name in dirs:
            found.append(Path(top) / name)
            dirs.remove(name)
        if depth >= _MAX_DEPTH:
            dirs.clear()
    return found


def remove_cgroups(name: str) -> list[str]:
    """rmdir every `name` directory and its subdirectories; returns the ones that could not go."""
    left: list[str] = []
    for base in find_cgroups(name):
        for top, dirs, _ in os.walk(base, topdown=False):
            for d in dirs:
                _rmdir(Path(top) / d, left)
        _rmdir(base, left)
    return left


def _rmdir(path: Path, left: list[str]) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        left.append(f"{path}: {exc.strerror}")

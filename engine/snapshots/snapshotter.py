"""The snapshotter interface (containerd's ``core/snapshots.Snapshotter``).

A snapshot is a directory tree in one of three kinds: *active* (writable,
from ``prepare``), *view* (read-only, from ``view``) and *committed*
(immutable, from ``commit``; only committed snapshots can be parents).  Image
layers are committed snapshots keyed by their ChainID, so images that share a
base share its snapshots.  Implementations live beside this file
(:mod:`engine.snapshots.overlay`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from engine.snapshots.mounts import Mount
from engine.snapshots.tar_writer import DiffResult


class Kind(enum.Enum):
    VIEW = "view"
    ACTIVE = "active"
    COMMITTED = "committed"


@dataclass(frozen=True)
class Info:
    name: str
    kind: Kind
    parent: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    created: float = 0.0  # seconds since the epoch
    updated: float = 0.0


@dataclass(frozen=True)
class Usage:
    size: int  # bytes allocated on disk (hardlinked inodes counted once)
    inodes: int


class Snapshotter(Protocol):
    def stat(self, key: str) -> Info: ...

    def update(self, key: str, labels: Mapping[str, str]) -> Info: ...

    def usage(self, key: str) -> Usage: ...

    def mounts(self, key: str) -> list[Mount]: ...

    def prepare(self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None) -> list[Mount]: ...

    def view(self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None) -> list[Mount]: ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None: ...

    def remove(self, key: str) -> None: ...

    def walk(self) -> Iterator[Info]: ...

    def diff(self, key: str, out: BinaryIO) -> DiffResult:
        """Write what ``key`` (active, unmounted) changed over its parent to ``out`` as a layer tar."""
        ...

    def close(self) -> None: ...

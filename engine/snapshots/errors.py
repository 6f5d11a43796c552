"""The snapshot layer's errors; the API maps them to Docker status codes in one place."""

from __future__ import annotations


class SnapshotError(Exception):
    """Base of every error raised by engine.snapshots."""


class NotFound(SnapshotError):
    """A snapshot key that does not exist."""


class AlreadyExists(SnapshotError):
    """A snapshot key that is already taken."""


class Conflict(SnapshotError):
    """The operation clashes with the snapshot's state (e.g. removing a parent with children)."""


class InvalidParameter(SnapshotError):
    """A request that can never succeed (e.g. committing a read-only view)."""


class LayerError(SnapshotError):
    """A layer tar that is malformed or tries to write outside its snapshot directory.

    ``entry`` names the offending tar member when there is one.
    """

    def __init__(self, message: str, entry: str | None = None) -> None:
        self.entry = entry
        super().__init__(f"{message} (entry {entry!r})" if entry is not None else message)


class MountError(SnapshotError):
    """mount/unmount of a snapshot failed."""

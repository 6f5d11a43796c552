"""The volume layer's errors; engine/api/errors.py maps each class to one HTTP status.

NotFound → 404, InUse / Conflict → 409, InvalidParameter → 400, MountFailed → 500
(the host refused a mount the volume's options asked for).
"""

from __future__ import annotations


class VolumeError(Exception):
    """Base of every error raised by engine.volumes."""


class NotFound(VolumeError):
    """No volume (or volume driver) has that name."""


class Conflict(VolumeError):
    """The request clashes with an existing volume, e.g. the same name under another driver."""


class InUse(Conflict):
    """The volume is referenced by containers; Docker refuses to remove it (even with force)."""

    def __init__(self, message: str, container_ids: list[str]) -> None:
        super().__init__(message)
        self.container_ids = container_ids


class InvalidParameter(VolumeError):
    """A name, option, filter or mount specification that cannot be used."""


class MountFailed(VolumeError):
    """Mounting or unmounting a volume's backing filesystem failed on the host."""

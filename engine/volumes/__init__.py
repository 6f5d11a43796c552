"""Named volumes (the `local` driver), copy-up, sizes, and Docker's mount specifications."""

from engine.volumes.errors import Conflict, InUse, InvalidParameter, MountFailed, NotFound, VolumeError
from engine.volumes.service import VolumeService

__all__ = ["Conflict", "InUse", "InvalidParameter", "MountFailed", "NotFound", "VolumeError", "VolumeService"]

"""The image layer's errors; the API maps each class to one HTTP status.

NotFound → 404, InvalidReference / InvalidArchive / InvalidParameter → 400,
Conflict → 409, DigestMismatch → 500 (content we were handed is not what it
claims to be; for a load the API may choose 400, the archive is at fault).
"""

from __future__ import annotations


class ImageError(Exception):
    """Base of every error raised by engine.images."""


class NotFound(ImageError):
    """No image, tag or blob matches what was asked for."""


class InvalidReference(ImageError):
    """A reference string does not follow the distribution/reference grammar."""


class InvalidParameter(ImageError):
    """A request parameter (e.g. an import --change line) cannot be used."""


class InvalidArchive(ImageError):
    """An image archive is malformed, inconsistent or unsafe; nothing of it was kept."""


class Conflict(ImageError):
    """The operation would break another object's use of the image (Docker's 409)."""


class DigestMismatch(ImageError):
    """Content does not hash (or size) to the digest it was announced with."""

"""What can go wrong while building the seed images."""

from __future__ import annotations


class SeedImageError(Exception):
    """A seed image could not be built."""


class HostToolMissing(SeedImageError):
    """A Debian tool the build needs (gcc, mmdebstrap, apt-get...) is not installed."""


class AptSourceNotFound(SeedImageError):
    """The machine's apt configuration has no source the build can use."""


class BuildStepFailed(SeedImageError):
    """A command or download in the build failed."""

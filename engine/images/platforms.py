"""The host's OCI platform and matching of index entries against it."""

from __future__ import annotations

import platform as _platform
from typing import Any

# uname -m → GOARCH, the names OCI platforms use (image-index.md#platform-variants).
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def host_architecture() -> str:
    machine = _platform.machine()
    return _ARCH.get(machine, machine)


def host_platform() -> dict[str, str]:
    return {"os": "linux", "architecture": host_architecture()}


def matches_host(platform: Any) -> bool:
    """True for an index entry's `platform` that this host runs natively."""
    if not isinstance(platform, dict):
        return False
    return platform.get("os") == "linux" and platform.get("architecture") == host_architecture()

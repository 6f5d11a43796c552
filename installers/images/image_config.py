"""The OCI image config of a one-layer seed image (image-spec config.md)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime

# dpkg architecture names → OCI's GOARCH-style names (image-spec config.md#properties).
_OCI_ARCH = {
    "amd64": ("amd64", ""),
    "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v5"),
    "i386": ("386", ""),
    "ppc64el": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True)
class SeedConfig:
    """What a container of the image runs by default, and how the image came to be."""

    cmd: list[str]
    env: list[str] = field(
        default_factory=lambda: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    )
    created_by: str = ""
    comment: str = ""


def host_platform() -> tuple[str, str]:
    """(architecture, variant) of this Debian host: the seed images hold its binaries."""
    dpkg_arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return _OCI_ARCH.get(dpkg_arch, (dpkg_arch, ""))


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def oci_config(seed: SeedConfig, diff_id: str, created: int, platform: tuple[str, str]) -> bytes:
    """The config JSON; keys sorted and compact so the bytes, hence the image ID, are stable."""
    architecture, variant = platform
    created_at = rfc3339(created)
    history: dict[str, object] = {"created": created_at, "created_by": seed.created_by}
    if seed.comment:
        history["comment"] = seed.comment
    config: dict[str, object] = {
        "architecture": architecture,
        "config": {"Cmd": seed.cmd, "Env": seed.env},
        "created": created_at,
        "history": [history],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if variant:
        config["variant"] = variant
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()

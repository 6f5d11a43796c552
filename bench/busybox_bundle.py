"""An OCI bundle around the host's static busybox, shared by every runtime a bench compares.

Same shape as tests/runtime/conftest.py's rootfs: /bin/busybox plus applet
links that point at the absolute /bin/busybox (the host has merged /usr, so
relative links computed on host paths would be wrong inside the rootfs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from engine.runtime.default_spec import default_spec

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
# crun 1.8 rejects ociVersion 1.2.0 ("unknown version specified"); 1.0.2 is accepted by
# runc, crun and berth-runtime, so every runtime reads the same config.json.
OCI_VERSION = "1.0.2"


def make_rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("/bin/busybox")
    for d in ("proc", "sys", "dev", "etc", "tmp", "root"):
        (root / d).mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def write_bundle(path: Path, rootfs: Path, args: list[str], cgroups_path: str) -> Path:
    """A bundle whose config.json points at the shared (read-only) rootfs by absolute path."""
    spec: dict[str, Any] = default_spec(terminal=False, args=args)
    spec["ociVersion"] = OCI_VERSION
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["linux"]["cgroupsPath"] = cgroups_path
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(spec, indent=1))
    return path

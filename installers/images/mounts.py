"""Makes sure no mount is left inside a build directory before it is deleted.

mmdebstrap (root mode) mounts /proc, /sys and /dev inside the tree it builds
and unmounts them when done; if it is killed half-way, deleting the tree
recursively would walk into the host's /proc or /dev.  Detach first.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below root, deepest first (the order they must be unmounted in)."""
    prefix = str(root.resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # Field 5 is the mount point, with spaces and the like octal-escaped (proc(5)).
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(root: Path) -> None:
    """Detaches any mount left under root, then deletes it."""
    for point in mounts_under(root):
        log.warning("unmounting %s left behind in a build directory", point)
        subprocess.run(["umount", "--lazy", str(point)], check=True)
    shutil.rmtree(root)

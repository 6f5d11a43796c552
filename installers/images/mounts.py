"""Makes sure no mount is left inside a build directory before it is deleted.

mmdebstrap (root mode) mounts /proc, /sys and /dev inside the tree it builds.
It runs in its own mount namespace, so those mounts should never be visible
here; this is the second line of defence, because deleting a tree with the
host's /proc or /dev mounted inside would be a disaster.  Detach first.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below root, deepest first (the order they must be unmounted in)."""
    prefix = str(root.resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # Field 5 is the mount point, with spaces and the like octal-escaped (proc(5)).
            point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(root: Path) -> None:
    """Detaches any mount left under root, then deletes it."""
    for point in mounts_under(root):
        log.warning("unmounting %s left behind in a build directory", point)
        subprocess.run(["umount", "--lazy", str(point)], check=True)
    shutil.rmtree(root)

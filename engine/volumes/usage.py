"""Disk usage of a volume for `system df`: moby's pkg/directory.Size rules.

Apparent sizes of everything but directories; a file with several hard links
is counted once (by device and inode).  os.fwalk walks by file descriptor
without following symlinks, so a container swapping a directory for a
symlink mid-walk cannot send the walk out of the volume.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def directory_size(root: Path) -> int:
    if not root.is_dir():
        return 0
    seen: set[tuple[int, int]] = set()
    total = 0
    for _dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        # fwalk lists symlinks to directories among dirnames (and does not descend into them).
        for name in (*filenames, *dirnames):
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we walked: a live volume
            if stat.S_ISDIR(st.st_mode) or st.st_size == 0:
                continue
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_size
    return total

"""OCI whiteouts and their overlayfs equivalents.

OCI image-spec layer.md "Whiteouts": a file ``.wh.<name>`` deletes ``<name>``
from the layers below, and ``.wh..wh..opq`` in a directory makes it opaque (the
lower directory's children are hidden).  Names starting with ``.wh..wh.`` other
than the opaque marker are reserved (AUFS' hardlink bookkeeping).

overlayfs (Documentation/filesystems/overlayfs.rst) stores the same facts
differently: a whiteout is a character device 0/0 and an opaque directory has
the xattr ``trusted.overlay.opaque=y``.  Snapshot directories keep overlay's
form so they can be stacked directly; tars carry the OCI form.
"""

from __future__ import annotations

import os
import stat

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
RESERVED_PREFIX = ".wh..wh."

OVERLAY_XATTR_PREFIX = "trusted.overlay."
OPAQUE_XATTR = "trusted.overlay.opaque"
# overlay features that make an upper dir depend on its lowers in ways a tar cannot express.
UNSUPPORTED_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")


def is_overlay_whiteout(st: os.stat_result) -> bool:
    """True for overlay's whiteout: a character device with device number 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def make_overlay_whiteout(name: str, dir_fd: int) -> None:
    os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=dir_fd)


def whited_out_name(base: str) -> str | None:
    """``foo`` for ``.wh.foo``; None when ``base`` is not a plain whiteout."""
    if base.startswith(WHITEOUT_PREFIX) and not base.startswith(RESERVED_PREFIX):
        return base[len(WHITEOUT_PREFIX) :]
    return None

from __future__ import annotations

from tests.runtime.conftest import busybox_rootfs

__all__ = ["busybox_rootfs"]

"""Per-container locks that serialise `start` with `docker cp`/export on the same container.

moby takes the container's lock in containerStart and holds it for a whole
copy (daemon/archive.go: containerArchivePath unlocks when the tar stream is
closed): a stopped container's rootfs is mounted for the copy, and a start
meanwhile would mount a second overlay on the same upper dir, and two
overlay mounts sharing an upper see each other's writes in an undefined
order (Documentation/filesystems/overlayfs.rst, "Sharing and copying
layers").

The locks are asyncio locks taken on the event loop, never by a worker
thread: a thread blocked on a lock would hold one of the default executor's
few threads, which the copy holding the lock needs to stream its tar.
"""

from __future__ import annotations

import asyncio
import weakref


class ContainerLocks:
    """One asyncio.Lock per container id, alive while someone holds or waits on it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def of(self, container_id: str) -> asyncio.Lock:
        lock = self._locks.get(container_id)
        if lock is None:
            lock = self._locks[container_id] = asyncio.Lock()
        return lock

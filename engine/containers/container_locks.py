"""Per-container locks that serialise `start` and `rm` with `docker cp`/export on the same container.

moby takes the container's lock in containerStart and containerRm and holds
it for a whole copy (daemon/archive.go: containerArchivePath unlocks when the
tar stream is closed): a stopped container's rootfs is mounted for the copy,
and a start meanwhile would mount a second overlay on the same upper dir --
two overlay mounts sharing an upper see each other's writes in an undefined
order (Documentation/filesystems/overlayfs.rst) -- while a removal would
delete the snapshot under the copy.

The locks are asyncio locks taken on the event loop, never by a worker
thread: a thread blocked on a lock would hold one of the default executor's
few threads, which the copy holding the lock needs to stream its tar.  They
are re-entrant for the task that holds them: a start that fails removes an
`--rm` container from inside its own hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator


class _Entry:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task[object] | None = None


class ContainerLocks:
    """One lock per container id, alive while someone holds or waits on it."""

    def __init__(self) -> None:
        self._entries: weakref.WeakValueDictionary[str, _Entry] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, container_id: str) -> AsyncIterator[None]:
        entry = self._entries.get(container_id)
        if entry is None:
            entry = self._entries[container_id] = _Entry()
        task = asyncio.current_task()
        if task is not None and entry.owner is task:
            yield  # already ours: an inner step of the same operation
            return
        async with entry.lock:
            entry.owner = task
            try:
                yield
            finally:
                entry.owner = None

"""Per-container locks that serialise `start` and `rm` with `docker cp`/export on the same container.

moby takes the container's lock in containerStart and containerRm and holds
it for a whole copy (daemon/archive.go: containerArchivePath unlocks when the
tar stream is closed): a stopped container's rootfs is mounted for the copy,
and a start meanwhile would mount a second overlay on the same upper dir --
two overlay mounts sharing an upper see each other's writes in an undefined
order (Documentation/filesystems/overlayfs.rst) -- while a removal would
delete the snapshot under the copy.

Unlike dockerd, a copy does not keep the lock from a client that stalls: a
copy's transfers go through `bounded`, and once another operation waits for
the lock, a client that takes (or sends) nothing for STALL_SECONDS is dropped
and the lock goes to the waiter.  In dockerd a `docker cp` whose reader stops
reading blocks `docker start`/`rm` of that container for as long as the
connection lives.

The locks are asyncio locks taken on the event loop, never by a worker
thread: a thread blocked on a lock would hold one of the default executor's
few threads, which the copy holding the lock needs to stream its tar.  They
are re-entrant for the task that holds them: a start that fails removes an
`--rm` container from inside its own hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
# How long a copy's client may stall while a start/rm waits for the lock (BERTH_COPY_STALL_SECONDS: tests).
STALL_SECONDS = float(os.environ.get("BERTH_COPY_STALL_SECONDS") or 30)


class ClientStalled(ConnectionError):
    """A copy's client moved no bytes for STALL_SECONDS while another operation waited for the lock:
    its connection is dropped (a ConnectionError: the server closes it without an answer)."""


class _Entry:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task[object] | None = None
        self.waiting = 0
        self.wanted = asyncio.Event()  # set while an operation waits for the lock


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
        entry.waiting += 1
        entry.wanted.set()
        try:
            await entry.lock.acquire()
        finally:
            entry.waiting -= 1
            if not entry.waiting:
                entry.wanted.clear()
        try:
            entry.owner = task
            yield
        finally:
            entry.owner = None
            entry.lock.release()

    async def bounded(self, container_id: str, step: Awaitable[T], what: str) -> T:
        """`step` (one write to, or read from, the client of an operation holding the lock), given at most
        STALL_SECONDS once another operation waits for the lock; then ClientStalled."""
        entry = self._entries.get(container_id)
        task = asyncio.ensure_future(step)
        try:
            while entry is not None and not task.done():
                if entry.waiting:
                    await asyncio.wait({task}, timeout=STALL_SECONDS)
                    if task.done():
                        break
                    log.warning("container %s: %s stalled for %gs while another operation waits for the "
                                "container; dropping its connection", container_id[:12], what, STALL_SECONDS)
                    raise ClientStalled(f"{what}: the client stalled while the container was wanted")
                wanted = asyncio.ensure_future(entry.wanted.wait())
                try:
                    await asyncio.wait({task, wanted}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    wanted.cancel()
            return await task
        finally:
            task.cancel()  # a no-op once done; else the stalled write/read goes with the connection

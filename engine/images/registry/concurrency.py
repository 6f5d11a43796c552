"""Running a pull's or push's blob transfers together, failing as one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def run_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await all; on the first failure cancel the rest, wait for them, and re-raise it.

    Unlike a bare `asyncio.gather`, no transfer keeps running (and writing into the
    content store) after its image has already failed; unlike a TaskGroup, callers get
    the first error itself rather than an ExceptionGroup.
    """
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise

"""The engine's event bus: what `docker events` streams.

Like dockerd, recent events are kept in memory (a bounded ring) so `--since`
can replay them, and live subscribers get every new event in order.  A slow
subscriber never blocks the engine: its queue is bounded and, when it
overflows, that subscriber is dropped (its stream ends) instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RING_SIZE = 1024
SUBSCRIBER_QUEUE = 4096


@dataclass(frozen=True)
class Event:
    type: str
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    scope: str = "local"
    time_nano: int = 0

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }
        # The pre-1.22 fields that docker-py and compose v1 still read.
        if self.type in ("container", "image"):
            body["status"] = self.action
            body["id"] = self.actor_id
            if "image" in self.attributes:
                body["from"] = self.attributes["image"]
        return body


class Subscription:
    def __init__(self, bus: EventBus, accept: Callable[[Event], bool]) -> None:
        self._bus = bus
        self.accept = accept
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)

    async def next(self) -> Event | None:
        """The next matching event, or None once the subscription was dropped."""
        return await self.queue.get()

    def close(self) -> None:
        self._bus._subscribers.discard(self)


class EventBus:
    def __init__(self) -> None:
        self._ring: deque[Event] = deque(maxlen=RING_SIZE)
        self._subscribers: set[Subscription] = set()

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> Event:
        event = Event(type_, action, actor_id, dict(attributes or {}), time_nano=time.time_ns())
        self._ring.append(event)
        for sub in list(self._subscribers):
            if not sub.accept(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("dropping an events subscriber that fell %d events behind", SUBSCRIBER_QUEUE)
                self._subscribers.discard(sub)
                _force_put(sub.queue, None)
        log.debug("event %s %s %s", type_, action, actor_id)
        return event

    def history(self, since_ns: int | None, until_ns: int | None, accept: Callable[[Event], bool]) -> list[Event]:
        return [
            e
            for e in self._ring
            if (since_ns is None or e.time_nano >= since_ns)
            and (until_ns is None or e.time_nano <= until_ns)
            and accept(e)
        ]

    def subscribe(self, accept: Callable[[Event], bool]) -> Subscription:
        sub = Subscription(self, accept)
        self._subscribers.add(sub)
        return sub

    @property
    def listeners(self) -> int:
        return len(self._subscribers)


def _force_put(queue: asyncio.Queue[Event | None], item: Event | None) -> None:
    while True:
        try:
            queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            queue.get_nowait()

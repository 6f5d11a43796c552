"""GET /events: replay since a time, then stream live events until `until` or hang-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from engine.api.errors import InvalidParameter
from engine.api.filters import Filters, parse_filters
from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router
from engine.daemon.events import Event, Subscription

FILTER_KEYS = {"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin",
               "scope", "secret", "service", "type", "volume"}


class EventsBackend(Protocol):
    def history(self, since_ns: int | None, until_ns: int | None, accept: Callable[[Event], bool]) -> list[Event]: ...
    def subscribe(self, accept: Callable[[Event], bool]) -> Subscription: ...


def parse_timestamp(value: str | None) -> int | None:
    """Unix seconds with an optional fraction ("1700000000.5") or RFC 3339, to nanoseconds."""
    if value is None or value == "":
        return None
    seconds, dot, fraction = value.partition(".")
    if seconds.lstrip("-").isdigit() and (not dot or fraction.isdigit()):
        return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9] if dot else 0)
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1_000_000_000)
    except ValueError as exc:
        raise InvalidParameter(f"invalid timestamp {value!r}: want Unix seconds or RFC 3339") from exc


def event_matcher(filters: Filters) -> Callable[[Event], bool]:
    def accept(event: Event) -> bool:
        if "type" in filters and event.type not in filters["type"]:
            return False
        if "event" in filters and event.action not in filters["event"] and not any(
            event.action.startswith(f"{f}:") for f in filters["event"]
        ):
            return False
        if "scope" in filters and event.scope not in filters["scope"]:
            return False
        for kind in ("container", "image", "network", "volume", "daemon", "plugin", "service",
                     "node", "secret", "config"):
            if kind not in filters:
                continue
            if event.type != kind and not (kind == "image" and event.type == "container"):
                return False
            names = {event.actor_id, event.attributes.get("name", "")}
            if kind == "image" and event.type == "container":
                names = {event.attributes.get("image", "")}
            if not any(term in names or event.actor_id.startswith(term) for term in filters[kind] if term):
                return False
        for term in filters.get("label", []):
            key, eq, want = term.partition("=")
            if key not in event.attributes or (eq and event.attributes[key] != want):
                return False
        return True

    return accept


def register(router: Router, backend: EventsBackend) -> None:
    async def events(request: Request, conn: HTTPConnection) -> Response | None:
        since = parse_timestamp(request.arg("since"))
        until = parse_timestamp(request.arg("until"))
        accept = event_matcher(parse_filters(request.arg("filters"), FILTER_KEYS))
        # Subscribe before replaying so nothing published in between is lost.
        sub = backend.subscribe(accept)
        try:
            await conn.start_stream(200, "application/json")
            last = 0
            if since is not None:
                for event in backend.history(since, until, accept):
                    await conn.write_chunk(_line(event))
                    last = event.time_nano
            if until is not None and until <= time.time_ns():
                await conn.end_stream()
                return None
            await _stream_live(conn, sub, until, after_ns=last)
        finally:
            sub.close()
        return None

    router.add("GET", "/events", events)


async def _stream_live(conn: HTTPConnection, sub: Subscription, until: int | None, after_ns: int) -> None:
    # The client's hang-up shows as EOF on the read side; nothing else would
    # wake us while no events happen.
    hangup = asyncio.ensure_future(conn.reader.read(1))
    try:
        while True:
            timeout = None if until is None else max(0.0, (until - time.time_ns()) / 1e9)
            getter = asyncio.ensure_future(sub.next())
            done, _ = await asyncio.wait({getter, hangup}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if hangup in done:
                    return  # client gone
                await conn.end_stream()  # reached `until`
                return
            event = getter.result()
            if event is None:
                await conn.end_stream()
                return
            if event.time_nano <= after_ns:
                continue  # already sent from history
            if until is not None and event.time_nano > until:
                await conn.end_stream()
                return
            await conn.write_chunk(_line(event))
    finally:
        hangup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hangup


def _line(event: Event) -> bytes:
    return json.dumps(event.to_json(), separators=(",", ":")).encode() + b"\n"

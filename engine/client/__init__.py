"""The Engine API client shared by the `berth` CLI (sync), the desktop and vmbackend (async).

Names are resolved lazily: the CLI imports only the sync client, and must not
pay for asyncio at start-up.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: `berth ps` (engine/cli/fast.py) would pay ~2 ms for it; mypy reads it alike
if TYPE_CHECKING:
    from typing import Any

    from engine.client.aio import AsyncClient
    from engine.client.errors import APIError, ClientError, Conflict, EngineUnreachable, NotFound
    from engine.client.hosts import EngineAddress, default_address, parse_host
    from engine.client.sync import Client

_WHERE = {
    "AsyncClient": "aio", "Client": "sync", "APIError": "errors", "ClientError": "errors", "Conflict": "errors",
    "EngineUnreachable": "errors", "NotFound": "errors", "EngineAddress": "hosts", "default_address": "hosts",
    "parse_host": "hosts",
}

__all__ = [
    "APIError", "AsyncClient", "Client", "ClientError", "Conflict", "EngineAddress", "EngineUnreachable",
    "NotFound", "default_address", "parse_host",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'engine.client' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"engine.client.{_WHERE[name]}"), name)

"""The Engine API client shared by the `berth` CLI (sync), the desktop and vmbackend (async)."""

from engine.client.aio import AsyncClient
from engine.client.errors import APIError, ClientError, Conflict, EngineUnreachable, NotFound
from engine.client.hosts import EngineAddress, default_address, parse_host
from engine.client.sync import Client

__all__ = ["APIError", "AsyncClient", "Client", "ClientError", "Conflict", "EngineAddress",
           "EngineUnreachable", "NotFound", "default_address", "parse_host"]

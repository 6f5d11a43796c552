"""Errors the API client raises: what the daemon said, or why it could not be reached."""

from __future__ import annotations


class ClientError(Exception):
    """Base class for everything engine.client raises."""


class EngineUnreachable(ClientError):
    """No engine answers at the configured address."""

    def __init__(self, address: str, reason: str, platform: str | None = None) -> None:
        super().__init__(f"Cannot connect to the Berth daemon at {address}; is it running? "
                         f"{start_hint(platform)} ({reason})")
        self.address = address


def start_hint(platform: str | None = None) -> str:
    """How to start the engine where the CLI runs: berthd itself on Linux (native, no VM), the VM elsewhere."""
    import sys

    if (platform or sys.platform).startswith("linux"):
        return ("Start it with `berthd` (`make run` in a source tree), "
                "or point -H/BERTH_HOST at another engine.")
    return "Try `berth machine start`."


class APIError(ClientError):
    """The engine answered with an error status and Docker's {"message": ...} body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class NotFound(APIError):
    pass


class Conflict(APIError):
    pass


class BadParameter(APIError):
    pass


def error_for(status: int, message: str) -> APIError:
    cls = {400: BadParameter, 404: NotFound, 409: Conflict}.get(status, APIError)
    return cls(status, message)

"""Errors the API client raises: what the daemon said, or why it could not be reached."""

from __future__ import annotations


class ClientError(Exception):
    """Base class for everything engine.client raises."""


class EngineUnreachable(ClientError):
    """No engine answers at the configured address."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(
            f"Cannot connect to the Berth engine at {address}: {reason}. Is berthd running? "
            "(`make run` starts it; -H or BERTH_HOST point the CLI at another engine)"
        )
        self.address = address


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

"""API errors and the one place they become HTTP statuses.

Docker's clients read `{"message": ...}` and the status code: 400 bad
parameter, 404 not found, 409 conflict, 500 for real faults only.  Backends
raise these (or their own subclasses); the server maps them here and nowhere
else (moby's errdefs + httpstatus.FromError).
"""

from __future__ import annotations


class APIError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(APIError):
    status = 400


class Unauthorized(APIError):
    status = 401


class Forbidden(APIError):
    status = 403


class NotFound(APIError):
    status = 404


class NotAllowed(APIError):
    status = 405


class Conflict(APIError):
    status = 409


class NotModified(APIError):
    status = 304


class Unavailable(APIError):
    status = 503


class NotImplementedYet(APIError):
    """An endpoint Berth knows but does not serve yet: said plainly, never faked."""

    status = 501


def status_for(exc: BaseException) -> int:
    if isinstance(exc, APIError):
        return exc.status
    return 500

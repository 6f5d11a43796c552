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
    for cls in type(exc).__mro__:
        status = _backend_statuses().get(f"{cls.__module__}.{cls.__qualname__}")
        if status is not None:
            if status == -1:  # decided by the instance
                return 400 if getattr(exc, "user_error", False) else 500
            return status
    return 500


_STATUSES: dict[str, int] | None = None


def _backend_statuses() -> dict[str, int]:
    """Each backend's error classes, by name, and the status Docker gives them.

    Named rather than imported so that a request error does not import every
    backend; the classes live in engine/<area>/errors.py.
    """
    global _STATUSES
    if _STATUSES is None:
        _STATUSES = {
            "engine.api.http.BodyTooLarge": 400,
            "engine.images.errors.NotFound": 404,
            "engine.images.registry.errors.PullAccessDenied": 404,
            "engine.images.registry.errors.Unauthorized": 401,
            "engine.images.registry.errors.CredentialsError": 400,
            "engine.images.registry.errors.RegistryUnavailable": 500,
            "engine.images.errors.InvalidReference": 400,
            "engine.images.errors.InvalidParameter": 400,
            "engine.images.errors.InvalidArchive": 400,
            "engine.images.errors.Conflict": 409,
            "engine.images.errors.DigestMismatch": 500,
            "engine.containers.errors.InvalidConfig": 400,
            "engine.containers.errors.NoSuchContainer": 404,
            "engine.containers.execs.NoSuchExec": 404,
            "engine.containers.execs.ExecFailed": 500,
            "engine.containers.errors.NameConflict": 409,
            "engine.containers.errors.StateConflict": 409,
            "engine.containers.errors.StartFailed": -1,
            "engine.containers.json_log.LogOptionError": 400,
            "engine.volumes.errors.NotFound": 404,
            "engine.volumes.errors.Conflict": 409,
            "engine.volumes.errors.InvalidParameter": 400,
            "engine.volumes.errors.MountFailed": 500,
            "engine.containers.users.UserError": 400,
            "engine.build.errors.BuildError": 400,
            "engine.containers.filesystem.PathNotFound": 404,
            "engine.containers.filesystem.InvalidPath": 400,
            "engine.snapshots.errors.LayerError": 400,
            "engine.network.errors.NotFound": 404,
            "engine.network.errors.Conflict": 409,
            "engine.network.errors.InvalidParameter": 400,
            "engine.network.service.Forbidden": 403,
        }
    return _STATUSES

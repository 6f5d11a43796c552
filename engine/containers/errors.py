"""The container layer's errors; engine/api/errors.py maps each class to one HTTP status."""

from __future__ import annotations


class ContainerError(Exception):
    """Base of every error raised by engine.containers."""


class InvalidConfig(ContainerError):
    """A create/update request that cannot become a container (400)."""


class NoSuchContainer(ContainerError):
    """No container matches the name or id (404)."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"No such container: {ref}")


class NameConflict(ContainerError):
    """The name is taken (409)."""


class StateConflict(ContainerError):
    """The container's state forbids the operation, e.g. removing a running one (409)."""


class StartFailed(ContainerError):
    """The runtime could not start the process (400 for a missing binary, like Docker; else 500)."""

    def __init__(self, message: str, user_error: bool) -> None:
        super().__init__(message)
        self.user_error = user_error

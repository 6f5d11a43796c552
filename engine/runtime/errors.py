"""The runtime's small exception hierarchy.

The CLI maps these to runc-like messages and exit status 1; the daemon maps
them to API errors (NotFound -> 404, Conflict -> 409, InvalidSpec -> 400).
"""

from __future__ import annotations


class RuntimeFailure(Exception):
    """Base of every error the OCI runtime reports on purpose."""


class ContainerNotFound(RuntimeFailure):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container does not exist: {container_id}")
        self.container_id = container_id


class ContainerExists(RuntimeFailure):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container with id exists: {container_id}")
        self.container_id = container_id


class InvalidState(RuntimeFailure):
    """The verb does not apply in the container's current status (e.g. start of a running one)."""


class InvalidSpec(RuntimeFailure):
    """config.json is missing, unreadable or asks for something the runtime cannot do."""


class SetupFailed(RuntimeFailure):
    """The container init reported an error while preparing the container."""


class HookFailed(RuntimeFailure):
    """A lifecycle hook exited non-zero or timed out (runtime-spec config.md#posix-platform-hooks)."""


class Unsupported(RuntimeFailure):
    """A feature this host or build cannot provide (e.g. no cgroup manager available)."""

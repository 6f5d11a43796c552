"""A container's status and its runtime-spec state (runtime.md#state).

Status is derived, never stored: the init's pid + start time say whether it
still lives, exec.fifo says whether `start` happened, the cgroup freezer says
whether it is paused (runc's container.currentStatus does the same).
"""

from __future__ import annotations

import os

from .cgroup_link import open_container_cgroup
from .procinfo import is_running
from .state import ContainerRecord, StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.2.0"


if TYPE_CHECKING:  # a TypedDict class costs ~1 ms of every berth-runtime call to build: for mypy only
    from typing import TypedDict

    class OCIState(TypedDict, total=False):
        ociVersion: str
        id: str
        status: str
        pid: int
        bundle: str
        annotations: dict[str, str]
else:
    OCIState = dict


def container_status(store: StateStore, record: ContainerRecord) -> str:
    if record.pid <= 0:
        return "creating"
    if not is_running(record.pid, record.pid_start_time):
        return "stopped"
    if record.cgroup_path is not None:
        # Checked first: a created container can be paused too (runc reports "paused" then),
        # and `start` must not wait on a frozen init.
        cgroup = open_container_cgroup(record.cgroup_path, record.id)
        if cgroup is not None and cgroup.is_frozen():
            return "paused"
    if os.path.exists(store.fifo_path(record.id)):
        return "created"
    return "running"


def oci_state(record: ContainerRecord, status: str) -> OCIState:
    state: OCIState = {
        "ociVersion": OCI_VERSION,
        "id": record.id,
        "status": status,
        "bundle": record.bundle,
        "annotations": dict(record.annotations),
    }
    # runtime.md#state: pid is REQUIRED when status is created or running.
    if status in ("created", "running", "paused", "creating") and record.pid > 0:
        state["pid"] = record.pid
    return state


def hook_state(record: ContainerRecord, status: str) -> dict[str, Any]:
    return dict(oci_state(record, status))

"""What Berth remembers about a container, and its state machine's fields (Docker's ContainerState)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class ContainerState:
    status: str = "created"  # created | running | paused | restarting | removing | exited | dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    shim_pid: int = 0
    # Docker's State.Health (Status, FailingStreak, Log) for a container with a health check.
    health: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    def to_docker(self) -> dict[str, Any]:
        docker: dict[str, Any] = {
            "Status": self.status,
            "Running": self.status in ("running", "paused"),
            "Paused": self.status == "paused",
            "Restarting": self.status == "restarting",
            "OOMKilled": self.oom_killed,
            "Dead": self.status == "dead",
            "Pid": self.pid if self.running else 0,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }
        if self.health is not None:
            docker["Health"] = self.health
        return docker


@dataclass
class ContainerRecord:
    id: str
    name: str
    created: str
    image_id: str
    image_name: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: ContainerState = field(default_factory=ContainerState)
    snapshot_key: str = ""
    restart_count: int = 0
    # Set by `docker stop`/`kill`, cleared by `start`: restart policies leave such a container alone.
    manually_stopped: bool = False
    # engine.volumes.mount_spec.MountSpec fields, volume names resolved (anonymous ones created).
    mounts: list[dict[str, Any]] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["state"] = asdict(self.state)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ContainerRecord:
        data = dict(row)
        data["state"] = ContainerState(**data.get("state", {}))
        return cls(**data)

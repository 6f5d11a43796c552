"""The daemon object: owns the engine's state and answers the API's backends."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from engine.daemon.config import DaemonConfig
from engine.daemon.events import EventBus

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.config.data_root.mkdir(parents=True, exist_ok=True, mode=0o710)
        self.config.exec_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._engine_id = _load_or_make_engine_id(self.config.data_root / "engine-id")
        self.events = EventBus()

    # SystemBackend
    def engine_id(self) -> str:
        return self._engine_id

    def data_root(self) -> str:
        return str(self.config.data_root)

    def container_counts(self) -> dict[str, int]:
        # No container store exists yet (issue #5): there are no containers to count.
        return {"total": 0, "running": 0, "paused": 0, "stopped": 0}

    def image_count(self) -> int:
        return 0

    def cgroup_version(self) -> str:
        return "2" if _pure_cgroup2() else "1"

    def registry_mirrors(self) -> list[str]:
        return list(self.config.registry_mirrors)

    def insecure_registries(self) -> list[str]:
        return list(self.config.insecure_registries)

    def events_listeners(self) -> int:
        return self.events.listeners


def _pure_cgroup2() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _load_or_make_engine_id(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        engine_id = str(uuid.uuid4())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(engine_id + "\n")
        os.replace(tmp, path)
        log.info("new engine id %s", engine_id)
        return engine_id

"""The daemon object: owns the engine's state and answers the API's backends."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from engine.containers.execs import ExecService
from engine.containers.health import HealthMonitor
from engine.containers.runtimes import Runtimes
from engine.containers.service import ContainerService, ServicePaths
from engine.containers.shim_host import HostClient
from engine.containers.store import ContainerStore
from engine.containers.zygote import SOCKET_NAME as ZYGOTE_SOCKET
from engine.containers.zygote import ZygoteClient
from engine.daemon.config import DaemonConfig
from engine.daemon.events import EventBus
from engine.images.image_store import ImageStore
from engine.network.service import NetworkService, network_options
from engine.snapshots.selection import open_snapshotter
from engine.store import MetadataDB
from engine.volumes import VolumeService

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.config.data_root.mkdir(parents=True, exist_ok=True, mode=0o710)
        self.config.exec_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._engine_id = _load_or_make_engine_id(self.config.data_root / "engine-id")
        self.events = EventBus()
        # The one metadata database; each area adds its own tables to it.
        self.db = MetadataDB.in_data_root(config.data_root)
        self.containers_store = ContainerStore(self.db)
        self.images = ImageStore(config.data_root, db=self.db, users=self.containers_store)
        # Overlay when the data root allows it; plain copies otherwise (e.g. a data root on overlayfs).
        self.snapshotter = open_snapshotter(config.data_root / "snapshots")
        self.volumes = VolumeService(self.db, config.data_root)
        self.networks = NetworkService(self.db, config.exec_root, network_options(config), self.events.publish,
                                       lambda container_id: config.data_root / "containers" / container_id)
        self.containers = ContainerService(
            ServicePaths(config.data_root, config.exec_root, config.cgroup_parent),
            self.containers_store, self.images, self.snapshotter, self.events.publish,
            log_opts=dict(config.log_opts), volumes=self.volumes, network=self.networks,
        )
        self.execs = ExecService(self.containers)
        from engine.build.service import BuildService

        self.builds = BuildService(self.images, self.snapshotter, self.containers, self.db, config.data_root,
                                   self.registry_config)
        self.containers.health = HealthMonitor(self.containers, self.execs)
        self.containers.zygote = ZygoteClient(str(config.exec_root / ZYGOTE_SOCKET))
        self.containers.runtimes = Runtimes.from_config(config.default_runtime, config.runtimes)
        if config.shim_mode == "shared":
            self.containers.shim_host = HostClient(config.exec_root, config.shim_host_max_containers,
                                                   self.containers.zygote)

    async def restore(self) -> None:
        if self.containers.zygote is not None:
            self.containers.zygote.start_in_background()  # its imports take ~0.3 s; the first fork waits
        await asyncio.to_thread(self.images.recover)  # what a kill -9 mid-pull left (before any request)
        await asyncio.to_thread(self.volumes.restore)
        # Networks first: running containers get their endpoints and published ports back before
        # the containers layer records the runs that ended meanwhile (which releases theirs).
        running = {r.id for r in self.containers_store.all() if r.state.status in ("running", "paused")}
        await self.networks.start(running)
        await self.containers.restore()
        await self.builds.restore()  # RUN containers of builds the daemon's end interrupted

    def close(self) -> None:
        if self.containers.shim_host is not None:
            self.containers.shim_host.close()  # an idle host exits; one with containers keeps them
        if self.containers.zygote is not None:
            self.containers.zygote.close()
        self.snapshotter.close()
        self.db.close()

    # SystemBackend
    def engine_id(self) -> str:
        return self._engine_id

    def data_root(self) -> str:
        return str(self.config.data_root)

    def container_counts(self) -> dict[str, int]:
        states = [r.state.status for r in self.containers_store.all()]
        return {"total": len(states), "running": states.count("running"), "paused": states.count("paused"),
                "stopped": len(states) - states.count("running") - states.count("paused")}

    def image_count(self) -> int:
        return len(self.images.list())

    def cgroup_version(self) -> str:
        return "2" if _pure_cgroup2() else "1"

    def live_restore(self) -> bool:
        return self.config.live_restore

    def runtimes(self) -> dict[str, Any]:
        """/info's Runtimes and DefaultRuntime."""
        return self.containers.runtimes.info()

    def registry_mirrors(self) -> list[str]:
        return list(self.config.registry_mirrors)

    def insecure_registries(self) -> list[str]:
        return list(self.config.insecure_registries)

    def registry_config(self) -> dict[str, list[str]]:
        """daemon.json's registry keys, as the registry client reads them (live: SIGHUP updates them)."""
        return {"registry-mirrors": list(self.config.registry_mirrors),
                "insecure-registries": list(self.config.insecure_registries)}

    def disk_usage(self) -> dict[str, Any]:
        """GET /system/df: images, containers (their writable layers), volumes, build cache."""
        from engine.containers.docker_json import summary_json

        images = self.images.summaries()
        containers = []
        for record in self.containers_store.all():
            summary = summary_json(record)
            try:
                summary["SizeRw"] = self.snapshotter.usage(record.snapshot_key).size
            except Exception:  # a snapshot being removed right now
                summary["SizeRw"] = 0
            containers.append(summary)
        volumes = self.volumes.list_volumes(with_usage=True)["Volumes"]
        return {
            "LayersSize": sum(int(i.get("Size") or 0) for i in images),
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": self.builds.cache_usage(),
        }

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

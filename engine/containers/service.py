"""Container lifecycle in the daemon: create, start, wait, stop, kill, remove, and restore after a restart.

The daemon owns the records (engine/store) and the rootfs snapshots; each
running container has a shim (engine/containers/shim.py) that owns its
processes and stdio.  This module ties them together, like moby's
daemon/{create,start,monitor,delete}.go over containerd.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.containers import health, oci_spec
from engine.containers.attach import AttachHub
from engine.containers.container_locks import ContainerLocks
from engine.containers.errors import InvalidConfig, NoSuchContainer, StartFailed, StateConflict
from engine.containers.json_log import LogOptions, parse_rfc3339_nano, rfc3339_nano
from engine.containers.names import generate_name, validate_name
from engine.containers.records import ZERO_TIME, ContainerRecord, ContainerState
from engine.containers.runtimes import BERTH, OCIRuntime, RuntimeFailed, Runtimes
from engine.containers.shim import CGROUP_FILE, EXIT_FILE, SHIM_SOCKET, read_exit_record, read_report
from engine.containers.store import ContainerStore
from engine.images.rootfs_prepare import prepare_rootfs
from engine.volumes.mount_spec import MountSpec, resolve_mounts
from engine.volumes.names import ANONYMOUS_LABEL

if TYPE_CHECKING:
    from engine.containers.health import HealthMonitor
    from engine.containers.shim_host import HostClient
    from engine.containers.zygote import ZygoteClient

log = logging.getLogger(__name__)

# Image config keys Docker copies into a container's Config when the request leaves them empty.
_INHERITED = ("Cmd", "Entrypoint", "WorkingDir", "User", "StopSignal", "Healthcheck", "Shell")

# How long a restarted daemon waits for a running container's shim to take its output relay: a shim
# (host) that is stopped takes the connection and answers nothing.
SHIM_ANSWER_TIMEOUT_S = 10.0


@dataclass
class ServicePaths:
    data_root: Path
    exec_root: Path
    cgroup_parent: str = "berth"

    def data_dir(self, container_id: str) -> Path:
        return self.data_root / "containers" / container_id

    def exec_dir(self, container_id: str) -> Path:
        # Short: unix socket paths (shim.sock) must stay under 108 bytes.
        return self.exec_root / "c" / container_id[:12]

    def log_path(self, container_id: str) -> Path:
        return self.data_dir(container_id) / f"{container_id}-json.log"

    @property
    def runtime_root(self) -> Path:
        return self.exec_root / "runtime"


@dataclass
class Live:
    """Per-container in-memory state: attach fan-out and exit notifications."""

    hub: AttachHub = field(default_factory=AttachHub)
    exited: asyncio.Event = field(default_factory=asyncio.Event)  # replaced at each start
    exit_waiters: list[asyncio.Future[ContainerRecord]] = field(default_factory=list)
    removal_waiters: list[asyncio.Future[ContainerRecord]] = field(default_factory=list)
    monitor: asyncio.Task[None] | None = None
    restart: asyncio.Task[None] | None = None
    reattach: asyncio.Task[None] | None = None  # after a daemon restart: the output relay to attach streams
    backoff: float = 0.0

    def resolve(self, waiters: list[asyncio.Future[ContainerRecord]], record: ContainerRecord) -> None:
        for future in waiters:
            if not future.done():
                future.set_result(record)
        waiters.clear()


class ContainerService:
    def __init__(self, paths: ServicePaths, store: ContainerStore, images: Any, snapshotter: Any,
                 publish: Callable[[str, str, str, dict[str, str]], object],
                 log_opts: dict[str, str] | None = None, volumes: Any = None, network: Any = None) -> None:
        self.paths = paths
        self.store = store
        self.images = images
        self.snapshotter = snapshotter
        self.volumes = volumes  # engine.volumes.VolumeService
        self.network = network  # engine.network.service.NetworkService (None: loopback-only netns)
        self.publish = publish
        self.log_opts = dict(log_opts or {})
        self.live: dict[str, Live] = {}
        self.health: HealthMonitor | None = None  # set by the daemon: probes need the exec service
        self.zygote: ZygoteClient | None = None  # set by the daemon: forks the shims (None: exec each one)
        # Set by the daemon (shim-mode "shared"): a shared shim host adopts each container; None, or a
        # host that cannot be reached or started: one shim per container, as above.
        self.shim_host: HostClient | None = None
        self.shutting_down = False  # stop_all_for_shutdown ran: exits restart nothing
        self.locks = ContainerLocks()  # start vs cp/export on one container (engine/containers/container_locks.py)
        self.runtimes = Runtimes()  # set by the daemon: --runtime, daemon.json runtimes (runtimes.py)

    def live_state(self, container_id: str) -> Live:
        return self.live.setdefault(container_id, Live())

    def publish_event(self, record: ContainerRecord, action: str, extra: dict[str, str] | None = None) -> None:
        attributes = {"name": record.name, "image": record.image_name}
        attributes.update({k: str(v) for k, v in (record.config.get("Labels") or {}).items()})
        attributes.update(extra or {})
        self.publish("container", action, record.id, attributes)

    # ------------------------------------------------------------------ create
    async def create(self, name: str | None, config: dict[str, Any], host_config: dict[str, Any],
                     networking_config: dict[str, Any] | None = None) -> tuple[ContainerRecord, list[str]]:
        image_ref = str(config.get("Image") or "")
        if not image_ref:
            raise InvalidConfig("config.Image must not be empty")
        image = self.images.get(image_ref)
        image_config = (self.images.config(image.id).get("config") or {})
        merged = merge_config(config, image_config)
        # Validate what can be checked before there is a rootfs (dockerd's verifyContainerSettings).
        oci_spec.resources(host_config, bool(host_config.get("Privileged")))
        oci_spec.capabilities(host_config)
        oci_spec.security_options(host_config)
        specs = resolve_mounts(
            binds=[str(b) for b in host_config.get("Binds") or []],
            mounts=host_config.get("Mounts") or [],
            volumes_from=[str(v) for v in host_config.get("VolumesFrom") or []],
            lookup=self._mounts_of,
            tmpfs=host_config.get("Tmpfs") or None,
            image_volumes=list((merged.get("Volumes") or {}).keys()),
        )
        LogOptions.from_opts(dict((host_config.get("LogConfig") or {}).get("Config") or self.log_opts))
        oci_spec.command_line(merged, {})
        validate_restart_policy(host_config.get("RestartPolicy") or {}, bool(host_config.get("AutoRemove")))
        health.validate(merged.get("Healthcheck"))
        host_config = {**host_config, "Runtime": self.runtimes.resolve(host_config.get("Runtime"))}
        container_name = validate_name(name) if name else generate_name(self.store.names())
        container_id = secrets.token_hex(32)
        record = ContainerRecord(
            id=container_id, name=container_name, created=rfc3339_nano(time.time_ns()), image_id=image.id,
            image_name=image_ref, config=merged, host_config=_normalize_host_config(host_config),
            snapshot_key=f"container-{container_id}",
        )
        self.store.add(record)  # name conflicts surface here, before any disk work is kept
        try:
            # Layers are unpacked once (shared by ChainID), under a lease so `rmi` cannot race it.
            await asyncio.to_thread(prepare_rootfs, self.images, self.snapshotter, image.id, record.snapshot_key)
            self.paths.data_dir(container_id).mkdir(parents=True, exist_ok=True)
            record.mounts = await asyncio.to_thread(self._claim_volumes, container_id, specs)
            if self.network is not None:
                self.network.prepare(container_id, merged, host_config, networking_config, self.store.get)
            self.store.save(record)
        except BaseException:
            await asyncio.to_thread(self._release_volumes, container_id, remove_anonymous=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.snapshotter.remove, record.snapshot_key)
            if self.network is not None:
                self.network.forget(container_id)
            self.store.remove(container_id)
            raise
        self.live_state(container_id)
        self.publish_event(record, "create")
        warnings: list[str] = []
        if self.network is None and str(host_config.get("NetworkMode") or "default") not in ("none", "host"):
            warnings.append("networking is disabled in this engine: the container gets a private network "
                            "namespace with loopback only")
        return record, warnings

    def _mounts_of(self, ref: str) -> list[MountSpec]:
        """--volumes-from: the mounts of another container."""
        return [MountSpec(**m) for m in self.store.get(ref).mounts]

    def _claim_volumes(self, container_id: str, specs: list[MountSpec]) -> list[dict[str, Any]]:
        """Create the volumes a new container names (or anonymous ones) and mark them in use."""
        claimed = []
        for spec in specs:
            resolved = spec
            if spec.type == "volume":
                if self.volumes is None:
                    raise InvalidConfig("volumes are not available in this engine")
                doc = self.volumes.create(name=spec.source, driver=spec.driver, driver_opts=spec.driver_options or None,
                                          labels=spec.labels or None, anonymous=spec.anonymous)
                resolved = replace(spec, source=doc["Name"])
                self.volumes.acquire(resolved.source, container_id)
            claimed.append(asdict(resolved))
        return claimed

    def _release_volumes(self, container_id: str, remove_anonymous: bool) -> None:
        if self.volumes is None:
            return
        names = self.volumes.release_container(container_id)
        if remove_anonymous:
            for name in names:
                with contextlib.suppress(Exception):  # in use by another container (volumes-from): keep it
                    if self.volumes.get(name).labels.get(ANONYMOUS_LABEL) is not None:
                        self.volumes.remove(name)

    def _mount_sources(self, record: ContainerRecord, rootfs: Path) -> list[dict[str, Any]]:
        """OCI mounts for the container's binds, volumes and tmpfs, volumes mounted and populated."""
        oci = []
        for raw in record.mounts:
            spec = MountSpec(**raw)
            host = ""
            if spec.type == "volume":
                host = str(self.volumes.mount_for(spec.source))
                if spec.subpath:
                    host = str(self.volumes.subpath(spec.source, spec.subpath))
                elif spec.copy_data:
                    self.volumes.populate_from(spec.source, rootfs, spec.target)
            elif spec.type == "bind" and spec.create_source and not os.path.exists(spec.source):
                os.makedirs(spec.source, exist_ok=True)  # `-v /new/dir:/x` creates the host dir, like Docker
            oci.append(spec.oci_mount(host))
        return oci

    def mount_points(self, record: ContainerRecord) -> list[dict[str, Any]]:
        """inspect's Mounts[]."""
        points = []
        for raw in record.mounts:
            spec = MountSpec(**raw)
            host = str(self.volumes.mountpoint(spec.source)) if spec.type == "volume" and self.volumes else ""
            points.append(spec.mount_point(host))
        return points

    # ------------------------------------------------------------------ start
    async def start(self, ref: str) -> None:
        """Start, holding the container's lock: a `docker cp` on the stopped container (which mounts its
        rootfs in a private namespace) finishes first, and two starts do not race (container_locks.py)."""
        async with self.locks.hold(self.store.get(ref).id):
            await self._start(ref)

    async def _start(self, ref: str) -> None:
        record = self.store.get(ref)
        if record.state.status in ("running", "paused"):
            raise AlreadyRunning(record.id)
        live = self.live_state(record.id)
        exec_dir = self.paths.exec_dir(record.id)
        if exec_dir.exists():
            await asyncio.to_thread(self._cleanup_run, record)
        exec_dir.mkdir(parents=True, exist_ok=True)
        rootfs = exec_dir / "rootfs"
        rootfs.mkdir(exist_ok=True)
        from engine.snapshots.mounts import mount

        await asyncio.to_thread(mount, self.snapshotter.mounts(record.snapshot_key), rootfs)
        try:
            netns_path = None
            if self.network is not None:
                sandbox = await self.network.setup(record.id, record.name, record.config, record.host_config,
                                                   self.store.get)
                etc, netns_path = sandbox.etc_files, sandbox.netns_path
            else:
                etc = self._write_etc_files(record)
            extra_mounts = await asyncio.to_thread(self._mount_sources, record, rootfs)
            built = oci_spec.build_spec(oci_spec.SpecInputs(
                container_id=record.id, config=record.config, host_config=record.host_config, image_config={},
                rootfs=str(rootfs), cgroups_path=f"{self.paths.cgroup_parent}/{record.id}",
                cgroup_v2=os.path.exists("/sys/fs/cgroup/cgroup.controllers"), etc_files=etc,
                mounts=extra_mounts, netns_path=netns_path,
            ))
            bundle = exec_dir / "bundle"
            bundle.mkdir(exist_ok=True)
            (bundle / "config.json").write_text(json.dumps(built.spec))
            with contextlib.suppress(FileNotFoundError):
                (exec_dir / EXIT_FILE).unlink()
            init_pid, shim_pid = await asyncio.to_thread(self._spawn_shim, record, bundle, exec_dir)
            reader, writer = await asyncio.open_unix_connection(str(exec_dir / SHIM_SOCKET))
            writer.write(json.dumps({"op": "attach", "stdin": bool(record.config.get("OpenStdin"))}).encode() + b"\n")
            await writer.drain()
            await reader.readline()
            live.exited = asyncio.Event()
            await live.hub.connect(reader, writer, bool(record.config.get("StdinOnce")))
            external = self.external_runtime(record)
            if external is not None:
                await asyncio.to_thread(external.start, record.id)
            else:
                from engine.runtime.lifecycle import start_container
                from engine.runtime.state import StateStore

                await asyncio.to_thread(start_container, StateStore(str(self.paths.runtime_root)), record.id)
        except BaseException as exc:
            await asyncio.to_thread(self._cleanup_run, record)
            await self._release_network(record.id)
            await self._start_failed(record, exc)
            raise
        record.state = ContainerState(status="running", pid=init_pid, started_at=rfc3339_nano(time.time_ns()),
                                      shim_pid=shim_pid, health=record.state.health)
        record.manually_stopped = False
        self.store.save(record)
        live.monitor = asyncio.ensure_future(self._monitor(record.id, exec_dir))
        if self.health is not None:
            self.health.run_started(record.id)
        self.publish_event(record, "start")

    async def _start_failed(self, record: ContainerRecord, exc: BaseException) -> None:
        """Like dockerd: record the error, end attached streams, and honour --rm."""
        live = self.live_state(record.id)
        user_error = isinstance(exc, StartFailed) and exc.user_error
        exit_code = (126 if "permission denied" in str(exc) else 127) if user_error else 128
        record.state = ContainerState(status="exited" if record.state.started_at != ZERO_TIME else "created",
                                      exit_code=exit_code, error=str(exc),
                                      started_at=record.state.started_at, finished_at=rfc3339_nano(time.time_ns()),
                                      health=record.state.health)
        self.store.save(record)
        live.hub.close_all()
        live.resolve(live.exit_waiters, record)
        if record.host_config.get("AutoRemove"):
            with contextlib.suppress(NoSuchContainer):
                await self.remove(record.id, force=True, volumes=True)

    def _write_etc_files(self, record: ContainerRecord) -> dict[str, str]:
        data_dir = self.paths.data_dir(record.id)
        hostname = str(record.config.get("Hostname") or record.id[:12])
        files = {
            "/etc/hostname": (data_dir / "hostname", f"{hostname}\n"),
            "/etc/hosts": (data_dir / "hosts",
                           f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"),
            "/etc/resolv.conf": (data_dir / "resolv.conf", _resolv_conf()),
        }
        for path, content in files.values():
            path.write_text(content)
        if str(record.host_config.get("NetworkMode")) == "host":
            files.pop("/etc/hostname")
        return {dest: str(path) for dest, (path, _) in files.items()}

    def _spawn_shim(self, record: ContainerRecord, bundle: Path, exec_dir: Path) -> tuple[int, int]:
        log_config = record.host_config.get("LogConfig") or {}
        log_opts = dict(log_config.get("Config") or self.log_opts)
        external = self.external_runtime(record)
        args = ["--runtime-root", str(self.paths.runtime_root if external is None else external.root),
                "--id", record.id, "--bundle", str(bundle), "--workdir", str(exec_dir),
                "--log-path", str(self.paths.log_path(record.id)), "--log-opts", json.dumps(log_opts)]
        if record.config.get("Tty"):
            args.append("--tty")
        if external is not None:
            args += ["--oci-runtime", external.path, "--oci-runtime-args", json.dumps(external.args)]
        if record.config.get("OpenStdin"):
            args.append("--open-stdin")
            if record.config.get("StdinOnce"):
                args.append("--stdin-once")
        if self.shim_host is not None:
            from engine.containers.shim_host import HostUnavailable

            try:
                # One shared supervisor for many containers (engine/containers/shim_host.py).
                adopted = self.shim_host.adopt(args)
            except HostUnavailable as exc:
                log.warning("shim host unavailable (%s): starting a shim for this container", exc)
            else:
                _raise_shim_error(adopted)
                return int(adopted["pid"]), int(adopted["shim_pid"])
        read_fd, write_fd = os.pipe()
        cmd = [sys.executable, "-m", "engine.containers.shim", *args, "--report-fd", str(write_fd)]
        proc: subprocess.Popen[bytes] | None = None
        try:
            with open(exec_dir / "shim.stderr", "wb") as stderr:
                from engine.containers.zygote import ZygoteUnavailable

                try:
                    if self.zygote is None:
                        raise ZygoteUnavailable("no shim zygote")
                    # Forked from the pre-imported zygote: shares its pages (engine/containers/zygote.py).
                    self.zygote.fork_shim(cmd[3:], write_fd, stderr.fileno())
                except ZygoteUnavailable as exc:
                    if self.zygote is not None:
                        log.warning("shim zygote unusable (%s): starting the shim with its own interpreter", exc)
                    proc = subprocess.Popen(cmd, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
                                            cwd=str(Path(__file__).resolve().parents[2]))
        except BaseException:
            os.close(read_fd)  # the zygote refused, or no shim could be started: the pipe goes too
            os.close(write_fd)
            raise
        os.close(write_fd)
        ready = read_report(read_fd)
        if ready is None:
            if proc is not None:
                proc.wait()
            lines = (exec_dir / "shim.stderr").read_text(errors="replace").strip().splitlines()
            raise StartFailed(f"shim failed: {lines[-1] if lines else 'no output'}", user_error=False)
        if "error" in ready and proc is not None:
            proc.wait()
        _raise_shim_error(ready)
        # The shim runs on its own (new session); it is reaped by whoever adopts it after we exit.
        if proc is not None:
            _forget(proc)
        return int(ready["pid"]), int(ready["shim_pid"])

    async def _reattach_output(self, container_id: str, exec_dir: Path, monitor: asyncio.Task[None]) -> None:
        """A running container's output, relayed again to its attach streams (its json log never stopped)."""
        try:
            reader, writer = await asyncio.wait_for(_open_shim_attach(exec_dir / SHIM_SOCKET), SHIM_ANSWER_TIMEOUT_S)
        except (ConnectionError, FileNotFoundError):
            return
        except TimeoutError:
            log.warning("the shim of %s does not answer (stopped?): attach streams get no output from it until "
                        "the next daemon start; its log goes on", container_id[:12])
            return
        live = self.live_state(container_id)
        if monitor.done() or live.monitor is not monitor:  # that run ended meanwhile (maybe another began)
            writer.close()
            return
        await live.hub.connect(reader, writer, False)

    async def _monitor(self, container_id: str, exec_dir: Path) -> None:
        """Wait for the run to end and record it: exit code, `die` event, rootfs unmounted, auto-remove."""
        exit_record = None
        try:
            reader, writer = await asyncio.open_unix_connection(str(exec_dir / SHIM_SOCKET))
            writer.write(b'{"op":"wait"}\n')
            await writer.drain()
            line = await reader.readline()
            writer.close()
            if line:
                exit_record = json.loads(line)
        except (ConnectionError, FileNotFoundError, ValueError) as exc:
            log.warning("lost the shim of %s (%s); reading its exit file", container_id, exc)
        await self._record_exit(container_id, exec_dir, exit_record)

    async def _record_exit(self, container_id: str, exec_dir: Path, exit_json: dict[str, Any] | None) -> None:
        live = self.live_state(container_id)
        if self.health is not None:
            self.health.run_ended(container_id)
        await live.hub.wait_run_end()
        if exit_json is None:
            from engine.runtime.procinfo import is_running

            shim_pid = 0
            with contextlib.suppress(NoSuchContainer):
                shim_pid = self.store.get(container_id).state.shim_pid
            for _ in range(100):  # the shim writes exit.json just before it closes its socket
                shim_alive = is_running(shim_pid, None)  # looked at first: a file it wrote is read below
                saved = read_exit_record(exec_dir)
                if saved is not None:
                    exit_json = saved.to_json()
                    break
                if not shim_alive:
                    break  # killed without writing one (a reboot-like stop): nothing to wait for
                await asyncio.sleep(0.05)
        try:
            record = self.store.get(container_id)
        except NoSuchContainer:
            return
        if exit_json is None:
            exit_json = {"ExitCode": 255, "FinishedAt": rfc3339_nano(time.time_ns()), "OOMKilled": False,
                         "Error": "the container's supervisor disappeared without an exit status"}
        record.state = ContainerState(status="exited", exit_code=int(exit_json["ExitCode"]),
                                      finished_at=str(exit_json["FinishedAt"]),
                                      oom_killed=bool(exit_json.get("OOMKilled")),
                                      error=str(exit_json.get("Error", "")), started_at=record.state.started_at,
                                      health=record.state.health)
        self.store.save(record)
        # Independent: the rootfs and bundle under exec_dir, the netns and veth elsewhere.
        await asyncio.gather(asyncio.to_thread(self._cleanup_run, record), self._release_network(container_id))
        if record.state.oom_killed:
            self.publish_event(record, "oom")
        self.publish_event(record, "die", {"exitCode": str(record.state.exit_code)})
        live.exited.set()
        live.resolve(live.exit_waiters, record)
        if record.host_config.get("AutoRemove"):
            with contextlib.suppress(NoSuchContainer):
                await self.remove(container_id, force=True, volumes=True)
        elif should_restart(record) and not self.shutting_down:
            self._schedule_restart(record, live)

    def _schedule_restart(self, record: ContainerRecord, live: Live) -> None:
        """moby's restartmanager: 100 ms back-off doubling to 1 min, reset after a run of 10 s or more."""
        started = parse_rfc3339_nano(record.state.started_at) / 1e9 if record.state.started_at != ZERO_TIME else 0
        ran = time.time() - started if started else 0
        live.backoff = 0.1 if ran >= 10 or live.backoff == 0 else min(live.backoff * 2, 60.0)
        record.restart_count += 1
        record.state.status = "restarting"
        self.store.save(record)
        delay = live.backoff

        async def restart_later() -> None:
            await asyncio.sleep(delay)
            try:
                current = self.store.get(record.id)
            except NoSuchContainer:
                return
            if current.state.status != "restarting" or current.manually_stopped:
                return
            try:
                await self.start(record.id)
                self.publish_event(self.store.get(record.id), "restart")
            except Exception as exc:  # it cannot start again: it stays exited, with the reason
                log.warning("restart of %s failed: %s", record.id[:12], exc)

        live.restart = asyncio.ensure_future(restart_later())

    async def _release_network(self, container_id: str) -> None:
        """Endpoints disconnected, addresses and ports freed, the netns removed (idempotent)."""
        if self.network is None:
            return
        try:
            await self.network.teardown(container_id)
        except Exception as exc:  # the rest of the cleanup must still happen
            log.error("network cleanup of %s failed: %s", container_id[:12], exc)

    def _cleanup_run(self, record: ContainerRecord) -> None:
        from engine.runtime.errors import ContainerNotFound
        from engine.runtime.lifecycle import delete_container
        from engine.runtime.state import StateStore
        from engine.snapshots.mounts import unmount_all_under

        # The shim deletes the runtime's state when the run ends; a shim that was killed (a
        # reboot-like stop, `kill -9`) leaves it, and the processes with it: end them, like
        # containerd does for a task whose shim died, so the next start can use the id.
        try:
            external = self.external_runtime(record)
            if external is not None:
                external.delete(record.id)
            else:
                delete_container(StateStore(str(self.paths.runtime_root)), record.id, force=True)
        except ContainerNotFound:
            pass
        except Exception:
            log.exception("runtime delete of %s failed", record.id[:12])
        exec_dir = self.paths.exec_dir(record.id)
        unmount_all_under(exec_dir)
        shutil.rmtree(exec_dir, ignore_errors=True)

    # ------------------------------------------------------------------ signals
    async def kill(self, ref: str, sig: str | int | None) -> None:
        record = self.store.get(ref)
        if record.state.status not in ("running", "paused"):
            raise StateConflict(f"Container {record.id} is not running")
        self._mark_manually_stopped(record)
        number = parse_signal(sig or "SIGKILL")
        await asyncio.to_thread(self._runtime_kill, record.id, number)
        self.publish_event(record, "kill", {"signal": str(number)})

    def _runtime_kill(self, container_id: str, number: int) -> None:
        from engine.runtime.errors import ContainerNotFound, InvalidState
        from engine.runtime.lifecycle import kill_container
        from engine.runtime.state import StateStore

        try:
            external = self.external_runtime(self.store.get(container_id))
            if external is not None:
                external.kill(container_id, number)
            else:
                kill_container(StateStore(str(self.paths.runtime_root)), container_id, number, all_processes=False)
        except (ContainerNotFound, InvalidState, RuntimeFailed, NoSuchContainer) as exc:  # stopped meanwhile
            log.info("kill %s: %s", container_id, exc)

    def _mark_manually_stopped(self, record: ContainerRecord) -> None:
        record.manually_stopped = True
        self.store.save(record)

    async def stop_all_for_shutdown(self) -> None:
        """dockerd without live-restore: every container stops with the daemon, each by its own stop
        signal and timeout.  Not a user's stop: restart policies bring them back at the next start."""
        self.shutting_down = True
        running = [r for r in self.store.all() if r.state.status in ("running", "paused", "restarting")]
        timeouts = [r.config.get("StopTimeout") for r in running]
        results = await asyncio.gather(*(self.stop(r.id, t if isinstance(t, int) else None, by_user=False)
                                         for r, t in zip(running, timeouts, strict=True)),
                                       return_exceptions=True)
        for record, result in zip(running, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, AlreadyStopped):
                log.warning("shutdown: container %s did not stop: %s", record.id[:12], result)

    async def stop(self, ref: str, timeout: int | None, sig: str | None = None, *, by_user: bool = True) -> None:
        record = self.store.get(ref)
        if record.state.status == "restarting":
            # Between two runs: there is no process to stop, only the pending restart to cancel.
            record.state.status = "exited"
            if by_user:
                self._mark_manually_stopped(record)
            else:
                self.store.save(record)
            self.publish_event(record, "stop")
            return
        if record.state.status not in ("running", "paused"):
            raise AlreadyStopped(record.id)
        if by_user:
            self._mark_manually_stopped(record)
        live = self.live_state(record.id)
        stop_signal = parse_signal(sig or record.config.get("StopSignal") or "SIGTERM")
        grace = 10 if timeout is None else timeout
        if record.state.status == "paused":
            await self.unpause(record.id)
        await asyncio.to_thread(self._runtime_kill, record.id, stop_signal)
        if grace < 0:
            await live.exited.wait()
        else:
            try:
                await asyncio.wait_for(live.exited.wait(), grace)
            except TimeoutError:
                log.info("container %s did not stop after %ds: SIGKILL", record.id, grace)
                await asyncio.to_thread(self._runtime_kill, record.id, signal.SIGKILL)
                await live.exited.wait()
        self.publish_event(self.store.get(record.id), "stop")

    async def pause(self, ref: str) -> None:
        from engine.runtime.lifecycle import pause_container
        from engine.runtime.state import StateStore

        record = self.store.get(ref)
        if record.state.status != "running":
            raise StateConflict(f"Container {record.id} is not running" if record.state.status != "paused"
                                else f"Container {record.id} is already paused")
        external = self.external_runtime(record)
        if external is not None:
            await asyncio.to_thread(external.pause, record.id)
        else:
            await asyncio.to_thread(pause_container, StateStore(str(self.paths.runtime_root)), record.id)
        record.state.status = "paused"
        self.store.save(record)
        self.publish_event(record, "pause")

    async def unpause(self, ref: str) -> None:
        from engine.runtime.lifecycle import resume_container
        from engine.runtime.state import StateStore

        record = self.store.get(ref)
        if record.state.status != "paused":
            raise StateConflict(f"Container {record.id} is not paused")
        external = self.external_runtime(record)
        if external is not None:
            await asyncio.to_thread(external.resume, record.id)
        else:
            await asyncio.to_thread(resume_container, StateStore(str(self.paths.runtime_root)), record.id)
        record.state.status = "running"
        self.store.save(record)
        self.publish_event(record, "unpause")

    # ------------------------------------------------------------------ wait / remove
    def wait(self, ref: str, condition: str) -> asyncio.Future[ContainerRecord]:
        """A future for the condition, registered now: the API sends headers, then awaits it.

        Registering before the response goes out matters: `docker run` sends
        `start` only after it saw the headers of `wait`, and the exit must not
        slip in between.
        """
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidConfig(f"invalid condition: {condition!r}")
        record = self.store.get(ref)
        live = self.live_state(record.id)
        future: asyncio.Future[ContainerRecord] = asyncio.get_running_loop().create_future()
        if condition == "removed":
            live.removal_waiters.append(future)
        elif condition == "next-exit" or record.state.status in ("running", "paused"):
            live.exit_waiters.append(future)
        else:
            future.set_result(record)
        return future

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        record = self.store.get(ref)
        if record.state.status in ("running", "paused"):
            if not force:
                raise StateConflict(
                    f"cannot remove container \"/{record.name}\": container is running: stop the container "
                    "before removing or force remove"
                )
            await self.kill(record.id, "SIGKILL")
            await self.live_state(record.id).exited.wait()
        # Under the container's lock: a `docker cp` on the stopped container has its snapshot mounted.
        async with self.locks.hold(record.id):
            try:
                record = self.store.get(record.id)
            except NoSuchContainer:
                return  # removed meanwhile (its --rm, on the exit the kill caused): what was asked is done
            if record.state.status in ("running", "paused"):  # started again while the copy held the lock
                raise StateConflict(f"cannot remove container \"/{record.name}\": container is running")
            await self._remove_stopped(record, volumes)

    async def _remove_stopped(self, record: ContainerRecord, volumes: bool) -> None:
        await asyncio.to_thread(self._cleanup_run, record)
        await self._release_network(record.id)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.snapshotter.remove, record.snapshot_key)
        shutil.rmtree(self.paths.data_dir(record.id), ignore_errors=True)
        await asyncio.to_thread(self._release_volumes, record.id, volumes)
        if self.network is not None:
            self.network.forget(record.id)
        self.store.remove(record.id)
        if self.health is not None:
            self.health.run_ended(record.id)
        self.publish_event(record, "destroy")
        live = self.live.pop(record.id, None)
        if live is not None:
            live.resolve(live.removal_waiters, record)
            live.resolve(live.exit_waiters, record)

    # ------------------------------------------------------------------ rename / update / look inside
    async def rename(self, ref: str, new_name: str) -> None:
        record = self.store.get(ref)
        old = record.name
        record.name = validate_name(new_name)
        if record.name == old:
            raise InvalidConfig("Renaming a container with the same name as its current name")
        self.store.save(record)  # a taken name raises NameConflict (409)
        if self.network is not None:
            self.network.rename(record.id, old, record.name)
        self.publish_event(record, "rename", {"oldName": "/" + old})

    async def update(self, ref: str, changes: dict[str, Any]) -> list[str]:
        """`docker update`: resources now (through the cgroup) and in the record for later starts."""
        record = self.store.get(ref)
        host = dict(record.host_config)
        for key in ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod",
                    "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight"):
            if key in changes and changes[key] not in (None, 0, ""):
                host[key] = changes[key]
        if changes.get("RestartPolicy"):
            host["RestartPolicy"] = changes["RestartPolicy"]
        resources = oci_spec.resources(host, bool(host.get("Privileged")))
        resources.pop("devices", None)  # device rules are fixed at create
        if record.state.status in ("running", "paused"):
            from engine.runtime.lifecycle import update_container
            from engine.runtime.state import StateStore

            external = self.external_runtime(record)
            if external is not None:
                await asyncio.to_thread(external.update, record.id, resources)
            else:
                await asyncio.to_thread(update_container, StateStore(str(self.paths.runtime_root)), record.id,
                                        resources)
        record.host_config = host
        self.store.save(record)
        self.publish_event(record, "update")
        return []

    def _require_running(self, ref: str) -> ContainerRecord:
        record = self.store.get(ref)
        if record.state.status not in ("running", "paused"):
            raise StateConflict(f"Container {record.id} is not running")
        return record

    def external_runtime(self, record: ContainerRecord) -> OCIRuntime | None:
        """The external runtime the container was created with (HostConfig.Runtime); None: Berth's library."""
        name = str(record.host_config.get("Runtime") or BERTH)
        if name == BERTH:
            return None
        spec = self.runtimes.external.get(name)
        if spec is None:
            raise StateConflict(f"container {record.id[:12]} uses runtime {name!r}, which is no longer configured "
                                "(daemon.json runtimes)")
        return OCIRuntime.of(spec, self.paths.exec_root / "runtimes" / name)

    async def top(self, ref: str) -> dict[str, Any]:
        from engine.containers.inspection import top
        from engine.runtime.lifecycle import container_pids
        from engine.runtime.state import StateStore

        record = self._require_running(ref)
        external = self.external_runtime(record)
        if external is not None:
            pids = await asyncio.to_thread(external.pids, record.id)
        else:
            pids = await asyncio.to_thread(container_pids, StateStore(str(self.paths.runtime_root)), record.id)
        return await asyncio.to_thread(top, pids)

    async def stats(self, ref: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        from engine.containers.inspection import stats_json
        from engine.runtime.cgroups import open_cgroup
        from engine.runtime.state import StateStore

        record = self._require_running(ref)
        if self.external_runtime(record) is not None:  # its shim wrote the cgroup the runtime made
            cgroup_path: str | None = (self.paths.exec_dir(record.id) / CGROUP_FILE).read_text()
        else:
            cgroup_path = StateStore(str(self.paths.runtime_root)).load(record.id).cgroup_path
        cgroup = open_cgroup(cgroup_path, record.id)
        stats = await asyncio.to_thread(cgroup.stats)
        return stats_json(record.id, record.name, stats, previous)

    async def prune(self, keep: Callable[[ContainerRecord], bool] | None = None) -> dict[str, Any]:
        """`docker container prune`: every stopped container (but those ``keep`` says to keep)."""
        deleted, reclaimed = [], 0
        for record in self.store.all():
            if record.state.status in ("created", "exited", "dead") and not (keep is not None and keep(record)):
                with contextlib.suppress(Exception):
                    reclaimed += self.snapshotter.usage(record.snapshot_key).size
                await self.remove(record.id)
                deleted.append(record.id)
        self.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ------------------------------------------------------------------ restore
    async def restore(self) -> None:
        """After a daemon restart: reattach to shims that kept running, record the runs that ended."""
        for record in self.store.all():
            live = self.live_state(record.id)
            if record.state.status not in ("running", "paused"):
                live.exited.set()
                continue
            exec_dir = self.paths.exec_dir(record.id)
            if _shim_answers(exec_dir / SHIM_SOCKET):
                # In the background: a stopped shim host (SIGSTOP: it takes connections and answers
                # nothing) must not keep the daemon from listening.
                live.monitor = asyncio.ensure_future(self._monitor(record.id, exec_dir))
                live.reattach = asyncio.ensure_future(self._reattach_output(record.id, exec_dir, live.monitor))
                if self.health is not None:
                    self.health.run_started(record.id, resume=True)
                log.info("reconnected to running container %s", record.id[:12])
            else:
                await self._record_exit(record.id, exec_dir, None)
        # After a reboot-like full stop: `always` and `unless-stopped` containers come back (moby's
        # restoreContainers); what _record_exit already scheduled is not started twice.
        for record in self.store.all():
            live = self.live_state(record.id)
            policy = str((record.host_config.get("RestartPolicy") or {}).get("Name") or "no")
            wanted = policy == "always" or (policy == "unless-stopped" and not record.manually_stopped)
            if wanted and record.state.status in ("exited", "created") and live.restart is None \
                    and record.state.started_at != ZERO_TIME:
                try:
                    await self.start(record.id)
                except Exception as exc:
                    log.warning("could not restart %s after the daemon restart: %s", record.id[:12], exc)


class AlreadyRunning(Exception):
    """Start of a running container: Docker answers 304 Not Modified."""


class AlreadyStopped(Exception):
    """Stop of a stopped container: Docker answers 304 Not Modified."""


def validate_restart_policy(policy: dict[str, Any], auto_remove: bool) -> None:
    name = str(policy.get("Name") or "no")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidConfig(f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                            "'on-failure', or 'unless-stopped'")
    if int(policy.get("MaximumRetryCount") or 0) and name != "on-failure":
        raise InvalidConfig("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if auto_remove and name != "no":
        raise InvalidConfig("conflicting options: cannot specify both --restart and --rm")


def should_restart(record: ContainerRecord) -> bool:
    """Docker's restart policies (no, always, unless-stopped, on-failure[:N]) after an exit."""
    if record.manually_stopped:
        return False
    policy = record.host_config.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "no")
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)
        return record.state.exit_code != 0 and (limit == 0 or record.restart_count < limit)
    return False


def parse_signal(value: str | int) -> int:
    if isinstance(value, int) or str(value).isdigit():
        number = int(value)
    else:
        name = str(value).upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            number = int(signal.Signals[name])
        except KeyError:
            raise InvalidConfig(f"Invalid signal: {value}") from None
    if not 0 < number < 65:
        raise InvalidConfig(f"Invalid signal: {value}")
    return number


def merge_config(config: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any]:
    """dockerd's merge of the image's config into a new container's Config."""
    merged = dict(config)
    for key in _INHERITED:
        if not merged.get(key) and image_config.get(key):
            merged[key] = image_config[key]
    if config.get("Healthcheck") and image_config.get("Healthcheck"):
        merged["Healthcheck"] = health.merge(config["Healthcheck"], image_config["Healthcheck"])
    if config.get("Entrypoint") and not config.get("Cmd"):
        merged["Cmd"] = None  # a new entrypoint drops the image's Cmd
    env: dict[str, str] = {}
    order: list[str] = []
    for item in [*(image_config.get("Env") or []), *(config.get("Env") or [])]:
        key = str(item).split("=", 1)[0]
        if key not in env:
            order.append(key)
        env[key] = str(item)
    merged["Env"] = [env[k] for k in order]
    labels = dict(image_config.get("Labels") or {})
    labels.update(config.get("Labels") or {})
    merged["Labels"] = labels
    exposed = dict(image_config.get("ExposedPorts") or {})
    exposed.update(config.get("ExposedPorts") or {})
    if exposed:
        merged["ExposedPorts"] = exposed
    volumes = dict(image_config.get("Volumes") or {})
    volumes.update(config.get("Volumes") or {})
    if volumes:
        merged["Volumes"] = volumes
    return merged


def _normalize_host_config(host: dict[str, Any]) -> dict[str, Any]:
    normalized = dict(host)
    normalized.setdefault("NetworkMode", "default")
    normalized.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    normalized.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    return normalized


def _resolv_conf() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            lines = [line for line in f if not line.startswith("nameserver 127.")]
    except OSError:
        lines = []
    return "".join(lines)


def _raise_shim_error(report: dict[str, Any]) -> None:
    """A shim's (or shim host's) report of a failed create, as the start error dockerd gives."""
    if "error" not in report:
        return
    message = str(report["error"])
    user_error = any(m in message for m in ("executable file not found", "no such file or directory",
                                             "permission denied"))
    raise StartFailed(f"failed to create task for container: {message}", user_error=user_error)


async def _open_shim_attach(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(b'{"op":"attach","stdin":false}\n')
        await writer.drain()
        await reader.readline()
    except BaseException:  # a failure or the caller's timeout: the connection is not kept
        writer.close()
        raise
    return reader, writer


def _shim_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _forget(proc: subprocess.Popen[bytes]) -> None:
    # Popen reaps in __del__ only if still a child; the shim setsid()s and stays our child until
    # it exits, so reap it from a thread that waits without blocking the event loop.
    import threading

    threading.Thread(target=proc.wait, name=f"reap-shim-{proc.pid}", daemon=True).start()

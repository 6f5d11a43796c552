"""Health checks (HEALTHCHECK / `--health-*`): probes run as execs in the container, on schedule.

Like moby's daemon/health.go: while a container runs, its monitor waits the
probe interval (the start interval inside the start period), runs the test
command through the container's shim with a timeout, and records the result
in State.Health: the last five probes, the failing streak, and the status
(`starting` until the first success or until `Retries` failures after the
start period; then `healthy`/`unhealthy`).  Each status change is a
`health_status: <status>` event.  State.Health is kept in the container's
record, so it survives a daemon restart; the monitor is started again for
containers found running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.containers.errors import ContainerError, NoSuchContainer
from engine.containers.json_log import parse_rfc3339_nano, rfc3339_nano

if TYPE_CHECKING:
    from engine.containers.execs import ExecService
    from engine.containers.records import ContainerRecord
    from engine.containers.service import ContainerService

log = logging.getLogger(__name__)

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
# moby's defaults (daemon/health.go) and limits.
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_LEN = 4096


@dataclass(frozen=True)
class HealthConfig:
    """Config.Healthcheck with durations in seconds and defaults applied."""

    command: list[str]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    start_period: float = 0.0
    start_interval: float = DEFAULT_START_INTERVAL
    retries: int = DEFAULT_RETRIES

    @classmethod
    def from_config(cls, healthcheck: dict[str, Any] | None) -> HealthConfig | None:
        """None when the container has no check (no Test, or `NONE`)."""
        check = healthcheck or {}
        test = [str(t) for t in check.get("Test") or []]
        if not test or test[0] == "NONE":
            return None
        if test[0] == "CMD-SHELL":
            command = ["/bin/sh", "-c", " ".join(test[1:])]
        elif test[0] == "CMD":
            command = test[1:]
        else:
            command = test  # moby treats an unknown first word as the command itself
        if not command:
            return None

        def seconds(key: str, default: float) -> float:
            value = int(check.get(key) or 0)
            return value / 1e9 if value > 0 else default

        return cls(command, seconds("Interval", DEFAULT_INTERVAL), seconds("Timeout", DEFAULT_TIMEOUT),
                   seconds("StartPeriod", 0.0), seconds("StartInterval", DEFAULT_START_INTERVAL),
                   int(check.get("Retries") or 0) or DEFAULT_RETRIES)


def validate(healthcheck: dict[str, Any] | None) -> None:
    """dockerd's checks at create (daemon/container.go verifyContainerSettings)."""
    from engine.containers.errors import InvalidConfig

    if not healthcheck:
        return
    minimum = 1_000_000  # 1 ms
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = int(healthcheck.get(key) or 0)
        if value != 0 and value < minimum:
            raise InvalidConfig(f"{key} in Healthcheck cannot be less than 1ms")
    if int(healthcheck.get("Retries") or 0) < 0:
        raise InvalidConfig("Retries in Healthcheck cannot be negative")


def merge(config: dict[str, Any] | None, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The container's Healthcheck over the image's, field by field (moby's merge in daemon/commit.go)."""
    if not image:
        return config
    if not config:
        return dict(image)
    merged = dict(config)
    if not merged.get("Test"):
        merged["Test"] = image.get("Test")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def status_suffix(health: dict[str, Any] | None) -> str:
    """docker ps: `Up 3 seconds (healthy)`, `(health: starting)` — moby's Health.String()."""
    if not health:
        return ""
    status = str(health.get("Status") or "")
    return " (health: starting)" if status == STARTING else f" ({status})"


def health_status(record: ContainerRecord) -> str:
    """The `health=` filter's value: starting, healthy, unhealthy or none."""
    if HealthConfig.from_config(record.config.get("Healthcheck")) is None or not record.state.health:
        return "none"
    return str(record.state.health.get("Status") or "none")


@dataclass
class ProbeResult:
    start: str
    end: str
    exit_code: int
    output: str

    def to_json(self) -> dict[str, Any]:
        return {"Start": self.start, "End": self.end, "ExitCode": self.exit_code, "Output": self.output}


class HealthMonitor:
    """One probe loop per running container with a health check."""

    def __init__(self, containers: ContainerService, execs: ExecService) -> None:
        self.containers = containers
        self.execs = execs
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def run_started(self, container_id: str, resume: bool = False) -> None:
        """A run began (or was found running after a daemon restart, `resume`): start probing."""
        self.run_ended(container_id)
        record = self.containers.store.get(container_id)
        config = HealthConfig.from_config(record.config.get("Healthcheck"))
        if config is None:
            return
        if not resume or not record.state.health:
            health = dict(record.state.health or {})
            health.update({"Status": STARTING, "FailingStreak": 0})
            health.setdefault("Log", [])
            record.state.health = health
            self.containers.store.save(record)
        self.tasks[container_id] = asyncio.ensure_future(self._loop(container_id, config))

    def run_ended(self, container_id: str) -> None:
        task = self.tasks.pop(container_id, None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        for container_id in list(self.tasks):
            self.run_ended(container_id)

    async def _loop(self, container_id: str, config: HealthConfig) -> None:
        try:
            record = self.containers.store.get(container_id)
            started = parse_rfc3339_nano(record.state.started_at) / 1e9
            while True:
                in_start_period = time.time() - started < config.start_period
                await asyncio.sleep(config.start_interval if in_start_period else config.interval)
                record = self.containers.store.get(container_id)
                if record.state.status == "paused":
                    continue
                if record.state.status != "running":
                    return
                result = await self.probe(container_id, config)
                self._record(container_id, config, result, started)
        except NoSuchContainer:
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("health monitor of %s failed", container_id[:12])

    async def probe(self, container_id: str, config: HealthConfig) -> ProbeResult:
        """Run the test command once, as an exec (moby's cmdProbe), with the check's timeout."""
        start = rfc3339_nano(time.time_ns())
        output = bytearray()
        try:
            init_pid = self.containers.store.get(container_id).state.pid
            instance = self.execs.create(container_id, {"Cmd": config.command, "AttachStdout": True,
                                                        "AttachStderr": True, "Tty": False})
        except ContainerError as exc:
            return ProbeResult(start, rfc3339_nano(time.time_ns()), -1, str(exc))
        pidfd: int | None = None
        try:
            shim = await self.execs.spawn(instance, with_stdin=False)
            pidfd = probe_pidfd(instance.pid, init_pid)
            relay = asyncio.ensure_future(self.execs.relay(instance, shim, None, capture=output,
                                                                capture_limit=MAX_OUTPUT_LEN))
            try:
                await asyncio.wait_for(asyncio.shield(relay), config.timeout)
            except TimeoutError:
                if pidfd is not None:  # the probe itself, never a process that got its number later
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(relay, 5)
                return ProbeResult(start, rfc3339_nano(time.time_ns()), -1,
                                   f"Health check exceeded timeout ({_duration(config.timeout)})")
            exit_code = instance.exit_code if instance.exit_code is not None else -1
        except Exception as exc:  # the exec could not start: a failed probe, with the reason as output
            return ProbeResult(start, rfc3339_nano(time.time_ns()), -1, str(exc))
        finally:
            if pidfd is not None:
                os.close(pidfd)
            self.execs.instances.pop(instance.id, None)  # probes are not listed in ExecIDs, like moby's
        text = bytes(output[:MAX_OUTPUT_LEN]).decode(errors="replace")
        return ProbeResult(start, rfc3339_nano(time.time_ns()), exit_code, text)

    def _record(self, container_id: str, config: HealthConfig, result: ProbeResult, started: float) -> None:
        """moby's handleProbeResult; read-modify-write with no await in between."""
        record = self.containers.store.get(container_id)
        if record.state.status != "running":
            return  # the run ended while the probe ran
        health = dict(record.state.health or {"Status": STARTING, "FailingStreak": 0})
        old_status = health.get("Status")
        health["Log"] = [*(health.get("Log") or []), result.to_json()][-MAX_LOG_ENTRIES:]
        if result.exit_code == 0:
            health["FailingStreak"] = 0
            health["Status"] = HEALTHY
        else:
            in_start_period = time.time() - started < config.start_period
            if not (old_status == STARTING and in_start_period):  # failures in the start period do not count
                health["FailingStreak"] = int(health.get("FailingStreak") or 0) + 1
                if health["FailingStreak"] >= config.retries:
                    health["Status"] = UNHEALTHY
        record.state.health = health
        self.containers.store.save(record)
        if health["Status"] != old_status:
            self.containers.publish_event(record, f"health_status: {health['Status']}")


def probe_pidfd(pid: int, init_pid: int) -> int | None:
    """A pidfd for the probe process ``pid``, taken as it starts: the timeout's kill goes through it, so
    a probe that ended (and was reaped by its shim) meanwhile cannot make us kill whoever reuses its pid.

    The number names the probe only if it is in the container's pid namespace; that is read while the
    pidfd shows its process alive (a signal 0 through it afterwards), so /proc/<pid> was that process.
    None when the probe is already gone or the number names something else: nothing to kill then.
    """
    if pid <= 0 or init_pid <= 0:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:  # gone already (ESRCH), or no pidfd to be had: nothing we may kill
        if not isinstance(exc, ProcessLookupError):
            log.warning("no pidfd for health probe %d: %s", pid, exc)
        return None
    try:
        ours = os.stat(f"/proc/{pid}/ns/pid").st_ino == os.stat(f"/proc/{init_pid}/ns/pid").st_ino
        signal.pidfd_send_signal(pidfd, 0)
    except OSError:
        ours = False
    if not ours:
        os.close(pidfd)
        return None
    return pidfd


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"

"""`docker exec` in the daemon: exec instances (create/start/inspect/resize) over the container's shim.

Like dockerd, exec instances live in memory only: they are short-lived and
tied to a running container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from engine.containers.attach import AttachClient
from engine.containers.errors import InvalidConfig, NoSuchContainer, StateConflict
from engine.containers.oci_spec import capabilities as container_capabilities
from engine.containers.service import ContainerService
from engine.containers.shim import EXEC_EXIT_STREAM, SHIM_SOCKET
from engine.containers.users import UserError, resolve_user
from engine.stdcopy import FrameDecoder


class NoSuchExec(NoSuchContainer):
    def __init__(self, exec_id: str) -> None:
        Exception.__init__(self, f"No such exec instance: {exec_id}")


class ExecFailed(Exception):
    """The exec'd process could not start (Docker answers 500 and the CLI exits 126/127)."""


@dataclass
class ExecInstance:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict[str, Any]:
        cmd = list(self.config.get("Cmd") or [])
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code, "Pid": self.pid,
            "ContainerID": self.container_id, "CanRemove": False, "DetachKeys": "",
            "OpenStdin": bool(self.config.get("AttachStdin")), "OpenStdout": bool(self.config.get("AttachStdout")),
            "OpenStderr": bool(self.config.get("AttachStderr")),
            "ProcessConfig": {"tty": bool(self.config.get("Tty")), "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:], "privileged": bool(self.config.get("Privileged")),
                              "user": str(self.config.get("User") or "")},
        }


class ExecService:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.instances: dict[str, ExecInstance] = {}

    def create(self, container_ref: str, config: dict[str, Any]) -> ExecInstance:
        record = self.containers.store.get(container_ref)
        if record.state.status != "running":
            raise StateConflict(f"container {record.id} is not running" if record.state.status != "paused"
                                else f"Container {record.id} is paused, unpause the container before exec")
        if not config.get("Cmd"):
            raise InvalidConfig("No exec command specified")
        instance = ExecInstance(secrets.token_hex(32), record.id, dict(config))
        self.instances[instance.id] = instance
        self.containers.publish_event(record, f"exec_create: {' '.join(config['Cmd'])}", {"execID": instance.id})
        return instance

    def get(self, exec_id: str) -> ExecInstance:
        instance = self.instances.get(exec_id)
        if instance is None:
            raise NoSuchExec(exec_id)
        return instance

    def _process(self, instance: ExecInstance) -> dict[str, Any]:
        """The container's OCI process, changed as the exec asks (moby's daemon/exec.go)."""
        record = self.containers.store.get(instance.container_id)
        exec_dir = self.containers.paths.exec_dir(record.id)
        spec = json.loads((exec_dir / "bundle" / "config.json").read_text())
        process = dict(spec["process"])
        config = instance.config
        process["args"] = [str(a) for a in config["Cmd"]]
        process["terminal"] = bool(config.get("Tty"))
        env = list(process.get("env") or [])
        for item in config.get("Env") or []:
            key = str(item).split("=", 1)[0]
            env = [e for e in env if e.split("=", 1)[0] != key] + [str(item)]
        process["env"] = env
        if config.get("WorkingDir"):
            process["cwd"] = str(config["WorkingDir"])
        if config.get("User"):
            try:
                user = resolve_user(str(exec_dir / "rootfs"), str(config["User"]))
            except UserError as exc:
                raise InvalidConfig(str(exc)) from exc
            process["user"] = {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids}
        if config.get("Privileged"):
            caps = container_capabilities({"Privileged": True})
            process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        process.pop("consoleSize", None)
        return process

    async def spawn(self, instance: ExecInstance, with_stdin: bool) -> tuple[asyncio.StreamReader,
                                                                            asyncio.StreamWriter]:
        """Start the process; errors surface here, before any stream is promised to a client."""
        if instance.started:
            raise StateConflict(f"Error: Exec command {instance.id} has already run")
        instance.started = True
        process = self._process(instance)
        sock = self.containers.paths.exec_dir(instance.container_id) / SHIM_SOCKET
        try:
            reader, writer = await asyncio.open_unix_connection(str(sock))
        except (FileNotFoundError, ConnectionError) as exc:
            raise StateConflict(f"container {instance.container_id} is not running") from exc
        want_stdin = bool(instance.config.get("AttachStdin")) and with_stdin
        writer.write(json.dumps({"op": "exec", "process": process, "stdin": want_stdin}).encode() + b"\n")
        await writer.drain()
        reply = json.loads(await reader.readline() or b"{}")
        if "error" in reply:
            writer.close()
            instance.exit_code = 126 if "permission denied" in reply["error"] else 127
            instance.done.set()
            raise ExecFailed(f"OCI runtime exec failed: {reply['error']}")
        instance.pid, instance.running = int(reply["pid"]), True
        record = self.containers.store.get(instance.container_id)
        action = f"exec_start: {' '.join(instance.config['Cmd'])}"
        self.containers.publish_event(record, action, {"execID": instance.id})
        return reader, writer

    async def relay(self, instance: ExecInstance, shim: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                    client: AttachClient | None, capture: bytearray | None = None, capture_limit: int = 0) -> None:
        """Relay the exec's stdio until the process ends, and record its exit code.

        `capture` collects stdout and stderr instead (health probes), at most
        `capture_limit` bytes: the rest is read and dropped, so a chatty
        process neither blocks nor grows the daemon's memory.
        """
        reader, writer = shim
        pump: asyncio.Task[None] | None = None
        if client is not None and client.stdin:
            pump = asyncio.ensure_future(_pump_stdin(client, writer))
        decoder = FrameDecoder()
        try:
            while data := await reader.read(64 * 1024):
                for stream, payload in decoder.feed(data):
                    if stream == EXEC_EXIT_STREAM:
                        instance.exit_code = int(json.loads(payload)["ExitCode"])
                    elif capture is not None:
                        capture += payload[:max(0, capture_limit - len(capture))]
                    elif client is not None:
                        client.send(stream, payload)
                if client is not None:
                    await client.writer.drain()
        except ConnectionError:
            pass
        finally:
            if pump is not None:
                pump.cancel()
            writer.close()
            instance.running = False
            if instance.exit_code is None:
                instance.exit_code = 126
            instance.done.set()
            if client is not None:
                client.close()
            with contextlib.suppress(NoSuchContainer):
                record = self.containers.store.get(instance.container_id)
                self.containers.publish_event(record, "exec_die", {"execID": instance.id,
                                                            "exitCode": str(instance.exit_code)})

    async def resize(self, instance: ExecInstance, height: int, width: int) -> None:
        sock = self.containers.paths.exec_dir(instance.container_id) / SHIM_SOCKET
        reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(json.dumps({"op": "resize", "pid": instance.pid, "height": height, "width": width}).encode()
                     + b"\n")
        await writer.drain()
        reply = json.loads(await reader.readline() or b"{}")
        writer.close()
        if "error" in reply:
            raise InvalidConfig(str(reply["error"]))


async def _pump_stdin(client: AttachClient, shim: asyncio.StreamWriter) -> None:
    try:
        if client.early_stdin:
            shim.write(client.early_stdin)
        while data := await client.reader.read(64 * 1024):
            shim.write(data)
            await shim.drain()
        if shim.can_write_eof():
            shim.write_eof()
    except ConnectionError:
        pass

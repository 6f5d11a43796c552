"""A container record in the Engine API's JSON shapes: inspect and list (ContainerSummary)."""

from __future__ import annotations

import shlex
import time
from typing import Any

from engine.containers.health import status_suffix
from engine.containers.json_log import parse_rfc3339_nano
from engine.containers.records import ContainerRecord
from engine.humanize import human_duration


def inspect_json(record: ContainerRecord, paths: dict[str, str], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    config = record.config
    host = record.host_config
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    return {
        "Id": record.id,
        "Created": record.created,
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": record.state.to_docker(),
        "Image": record.image_id,
        "ResolvConfPath": paths.get("resolv", ""),
        "HostnamePath": paths.get("hostname", ""),
        "HostsPath": paths.get("hosts", ""),
        "LogPath": paths.get("log", ""),
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {**host, "Runtime": host.get("Runtime") or "berth"},  # records from before runtimes
        "GraphDriver": {"Name": "overlay2", "Data": {"MergedDir": paths.get("rootfs", "")}},
        "Mounts": mounts,
        "Config": config,
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {},
        },
    }


def status_text(record: ContainerRecord, now: float | None = None) -> str:
    """`Up 3 minutes`, `Exited (0) 2 seconds ago`, `Created` — docker ps's STATUS column."""
    state = record.state
    now = time.time() if now is None else now
    if state.status in ("running", "paused"):
        since = now - parse_rfc3339_nano(state.started_at) / 1e9
        if state.status == "paused":
            return f"Up {human_duration(since)} (Paused)"
        return f"Up {human_duration(since)}" + status_suffix(state.health)
    if state.status == "exited":
        ago = now - parse_rfc3339_nano(state.finished_at) / 1e9
        return f"Exited ({state.exit_code}) {human_duration(ago)} ago"
    if state.status == "dead":
        return "Dead"
    if state.status == "restarting":
        return "Restarting"
    return "Created"


def summary_json(record: ContainerRecord) -> dict[str, Any]:
    config = record.config
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    return {
        "Id": record.id,
        "Names": ["/" + record.name],
        "Image": record.image_name,
        "ImageID": record.image_id,
        "Command": " ".join(shlex.quote(a) if " " in a else a for a in args),
        "Created": int(parse_rfc3339_nano(record.created) / 1e9),
        "Ports": [],
        "Labels": config.get("Labels") or {},
        "State": record.state.status,
        "Status": status_text(record),
        "HostConfig": {"NetworkMode": record.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [{"Type": m["type"], "Name": m["source"] if m["type"] == "volume" else "",
                    "Source": m["source"] if m["type"] == "bind" else "", "Destination": m["target"],
                    "RW": not m["read_only"]} for m in record.mounts],
    }

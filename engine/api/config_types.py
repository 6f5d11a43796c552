"""The JSON types of a container's Config and HostConfig, checked like Go's decoder checks dockerd's structs.

dockerd decodes `POST /containers/create` (and `/update`) into typed Go structs
(api/types/container: Config, HostConfig, Resources), so a value of the wrong
type is a 400 before anything runs: "json: cannot unmarshal string into Go
struct field HostConfig.Memory of type int64".  Without this, a string where a
number belongs reached the service and came back as a 500.  `null` is every
type's zero value in Go, so it passes; keys not listed are left to the service.
"""

from __future__ import annotations

import re
from typing import Any

from engine.api.errors import InvalidParameter

# Go type → (JSON kinds it accepts, the name Go's error uses).
_STR, _BOOL, _INT, _UINT16 = "string", "bool", "int64", "uint16"
_STRS, _STRSLICE, _OBJ, _LIST, _STRMAP = "[]string", "strslice", "object", "list", "map[string]string"

_CONFIG: dict[str, str] = {
    "Hostname": _STR, "Domainname": _STR, "User": _STR, "AttachStdin": _BOOL, "AttachStdout": _BOOL,
    "AttachStderr": _BOOL, "ExposedPorts": _OBJ, "Tty": _BOOL, "OpenStdin": _BOOL, "StdinOnce": _BOOL,
    "Env": _STRS, "Cmd": _STRSLICE, "Healthcheck": _OBJ, "ArgsEscaped": _BOOL, "Image": _STR, "Volumes": _OBJ,
    "WorkingDir": _STR, "Entrypoint": _STRSLICE, "NetworkDisabled": _BOOL, "MacAddress": _STR, "OnBuild": _STRS,
    "Labels": _STRMAP, "StopSignal": _STR, "StopTimeout": _INT, "Shell": _STRS,
}
RESOURCES: dict[str, str] = {
    "CpuShares": _INT, "Memory": _INT, "NanoCpus": _INT, "CgroupParent": _STR, "BlkioWeight": _UINT16,
    "CpuPeriod": _INT, "CpuQuota": _INT, "CpuRealtimePeriod": _INT, "CpuRealtimeRuntime": _INT,
    "CpusetCpus": _STR, "CpusetMems": _STR, "Devices": _LIST, "DeviceCgroupRules": _STRS, "KernelMemory": _INT,
    "KernelMemoryTCP": _INT, "MemoryReservation": _INT, "MemorySwap": _INT, "MemorySwappiness": _INT,
    "OomKillDisable": _BOOL, "PidsLimit": _INT, "Ulimits": _LIST, "CpuCount": _INT, "CpuPercent": _INT,
    "RestartPolicy": _OBJ,
}
_HOST_CONFIG: dict[str, str] = {
    **RESOURCES,
    "Binds": _STRS, "ContainerIDFile": _STR, "LogConfig": _OBJ, "NetworkMode": _STR, "PortBindings": _OBJ,
    "AutoRemove": _BOOL, "VolumeDriver": _STR, "VolumesFrom": _STRS, "CapAdd": _STRSLICE, "CapDrop": _STRSLICE,
    "CgroupnsMode": _STR, "Dns": _STRS, "DnsOptions": _STRS, "DnsSearch": _STRS, "ExtraHosts": _STRS,
    "GroupAdd": _STRS, "IpcMode": _STR, "Cgroup": _STR, "Links": _STRS, "OomScoreAdj": _INT, "PidMode": _STR,
    "Privileged": _BOOL, "PublishAllPorts": _BOOL, "ReadonlyRootfs": _BOOL, "SecurityOpt": _STRS,
    "StorageOpt": _STRMAP, "Tmpfs": _STRMAP, "UTSMode": _STR, "UsernsMode": _STR, "ShmSize": _INT,
    "Sysctls": _STRMAP, "Runtime": _STR, "Mounts": _LIST, "MaskedPaths": _STRS, "ReadonlyPaths": _STRS,
    "Init": _BOOL, "Annotations": _STRMAP,
}
# nat.Port: "80", "80/udp", "8000-8010/tcp" (go-connections ParsePortSpec's container side).
_PORT_KEY = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "value"


def _fits(value: Any, go_type: str) -> bool:
    if value is None:
        return True
    if go_type == _STR:
        return isinstance(value, str)
    if go_type == _BOOL:
        return isinstance(value, bool)
    if go_type in (_INT, _UINT16):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return isinstance(value, int) and not isinstance(value, bool) and (
            go_type == _INT or 0 <= value < 1 << 16)
    if go_type == _STRS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if go_type == _STRSLICE:  # docker's strslice: one string or a list of them
        return isinstance(value, str) or _fits(value, _STRS)
    if go_type == _STRMAP:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if go_type == _LIST:
        return isinstance(value, list)
    return isinstance(value, dict)


def check_fields(struct: str, body: dict[str, Any], fields: dict[str, str]) -> None:
    for key, go_type in fields.items():
        if key in body and not _fits(body[key], go_type):
            shown = "object" if go_type == _OBJ else "array" if go_type == _LIST else go_type
            raise InvalidParameter(f"json: cannot unmarshal {_json_kind(body[key])} into Go struct field "
                                   f"{struct}.{key} of type {shown}")


def check_create(config: dict[str, Any], host_config: dict[str, Any]) -> None:
    """`POST /containers/create`'s body: field types, then the exposed ports' keys (moby verifyContainerSettings)."""
    check_fields("Config", config, _CONFIG)
    check_fields("HostConfig", host_config, _HOST_CONFIG)
    for key in (config.get("ExposedPorts") or {}):
        match = _PORT_KEY.match(str(key))
        if match is None or any(int(p) > 65535 for p in match.groups()[:2] if p is not None):
            raise InvalidParameter(f'invalid port specification: "{str(key).partition("/")[0]}"')

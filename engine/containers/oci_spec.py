"""Docker's container Config + HostConfig + the image config → an OCI runtime spec.

The equivalent of moby's daemon/oci_linux.go createSpec: Docker's defaults
(capabilities, seccomp profile, masked and read-only paths, device rules,
/dev/shm size), then what the request asks for on top.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.containers.errors import InvalidConfig
from engine.containers.users import ExecUser, UserError, resolve_user
from engine.runtime.capabilities import CAPABILITY_NAMES, DEFAULT_CAPABILITIES
from engine.runtime.seccomp import default_seccomp

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

# moby oci/defaults.go + daemon/oci_linux.go.
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def _dev_rule(kind: str, major: int | None, minor: int | None, access: str = "rwm") -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


# Deny everything, then the nodes every container gets (oci/devices_linux.go DefaultLinuxSpec).
DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    _dev_rule("c", None, None, "m"),
    _dev_rule("b", None, None, "m"),
    _dev_rule("c", 1, 3), _dev_rule("c", 1, 5), _dev_rule("c", 1, 7), _dev_rule("c", 1, 8), _dev_rule("c", 1, 9),
    _dev_rule("c", 5, 0), _dev_rule("c", 5, 1), _dev_rule("c", 5, 2), _dev_rule("c", 136, None),
    _dev_rule("c", 10, 200),
]


@dataclass
class SpecInputs:
    container_id: str
    config: Mapping[str, Any]
    host_config: Mapping[str, Any]
    image_config: Mapping[str, Any]
    rootfs: str
    cgroups_path: str
    cgroup_v2: bool = False
    # Host files bind-mounted over /etc/hostname, /etc/hosts, /etc/resolv.conf (Docker's layout).
    etc_files: Mapping[str, str] = field(default_factory=dict)
    netns_path: str | None = None
    mounts: list[dict[str, Any]] = field(default_factory=list)  # OCI mounts for binds, volumes, tmpfs


@dataclass
class BuiltSpec:
    spec: dict[str, Any]
    user: ExecUser


def command_line(config: Mapping[str, Any], image_config: Mapping[str, Any]) -> list[str]:
    """Entrypoint + Cmd with Docker's override rules: a new entrypoint drops the image's Cmd."""
    entrypoint = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if entrypoint is not None and entrypoint != []:
        args = list(entrypoint) + list(cmd or [])
    else:
        if entrypoint == []:  # `--entrypoint ""` clears the image's entrypoint
            image_entrypoint: list[str] = []
        else:
            image_entrypoint = list(image_config.get("Entrypoint") or [])
        args = image_entrypoint + list(cmd if cmd else image_config.get("Cmd") or [])
    if not args:
        raise InvalidConfig("no command specified")
    return [str(a) for a in args]


def environment(config: Mapping[str, Any], image_config: Mapping[str, Any], hostname: str,
                tty: bool) -> list[str]:
    merged: dict[str, str] = {}
    for item in [*(image_config.get("Env") or []), *(config.get("Env") or [])]:
        key, eq, value = str(item).partition("=")
        if not key:
            raise InvalidConfig(f"invalid environment variable: {item}")
        if not eq:
            continue  # `-e NAME` without a value in the daemon: nothing to set
        merged[key] = value
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    if tty:
        env["TERM"] = "xterm"
    env.update({k: v for k, v in merged.items() if k != "HOSTNAME"})
    return [f"{k}={v}" for k, v in env.items()]


def capabilities(host_config: Mapping[str, Any]) -> list[str]:
    if host_config.get("Privileged"):
        return list(CAPABILITY_NAMES)
    caps = list(DEFAULT_CAPABILITIES)
    adds = [_cap_name(c) for c in host_config.get("CapAdd") or []]
    drops = [_cap_name(c) for c in host_config.get("CapDrop") or []]
    if "CAP_ALL" in drops:
        caps = []
    if "CAP_ALL" in adds:
        caps = list(CAPABILITY_NAMES)
    caps += [c for c in adds if c != "CAP_ALL" and c not in caps]
    return [c for c in caps if c not in drops]


def _cap_name(name: str) -> str:
    upper = str(name).upper()
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full != "CAP_ALL" and full not in CAPABILITY_NAMES:
        raise InvalidConfig(f"unknown capability: {name!r}")
    return full


def resources(host_config: Mapping[str, Any], privileged: bool) -> dict[str, Any]:
    res: dict[str, Any] = {
        "devices": [{"allow": True, "access": "rwm"}] if privileged else [dict(r) for r in DEFAULT_DEVICE_RULES]
    }
    memory: dict[str, Any] = {}
    limit = int(host_config.get("Memory") or 0)
    if limit < 0:
        raise InvalidConfig("invalid memory limit: must be positive")
    if limit:
        if limit < 6 * 1024 * 1024:
            raise InvalidConfig("Minimum memory limit allowed is 6MB")
        memory["limit"] = limit
        swap = int(host_config.get("MemorySwap") or 0)
        if swap == 0:
            memory["swap"] = 2 * limit  # docker: swap defaults to twice the memory limit
        elif swap > 0:
            if swap < limit:
                raise InvalidConfig("Minimum memoryswap limit should be larger than memory limit")
            memory["swap"] = swap
        else:
            memory["swap"] = -1
    if host_config.get("MemoryReservation"):
        memory["reservation"] = int(host_config["MemoryReservation"])
    if host_config.get("MemorySwappiness") is not None and int(host_config["MemorySwappiness"]) >= 0:
        memory["swappiness"] = int(host_config["MemorySwappiness"])
    if host_config.get("OomKillDisable"):
        memory["disableOOMKiller"] = True
    if memory:
        res["memory"] = memory

    cpu: dict[str, Any] = {}
    nano = int(host_config.get("NanoCpus") or 0)
    if nano and host_config.get("CpuQuota"):
        raise InvalidConfig("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano:
        cpu["period"] = 100000
        cpu["quota"] = nano * 100000 // 1_000_000_000
    for key, oci in (("CpuShares", "shares"), ("CpuQuota", "quota"), ("CpuPeriod", "period")):
        if host_config.get(key):
            cpu[oci] = int(host_config[key])
    for key, oci in (("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
        if host_config.get(key):
            cpu[oci] = str(host_config[key])
    if cpu:
        res["cpu"] = cpu
    pids = host_config.get("PidsLimit")
    if pids is not None and int(pids) > 0:
        res["pids"] = {"limit": int(pids)}
    if host_config.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(host_config["BlkioWeight"])}
    return res


def _size(value: Any, default: int) -> int:
    return int(value) if value else default


def default_mounts(host_config: Mapping[str, Any], privileged: bool) -> list[dict[str, Any]]:
    sys_options = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    shm = _size(host_config.get("ShmSize"), DEFAULT_SHM_SIZE)
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755",
                                                                               "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro" if not privileged else "rw"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]},
    ]


_SECURITY_OPT = re.compile(r"^([\w-]+)(?:[=:](.*))?$", re.S)


def security_options(host_config: Mapping[str, Any]) -> dict[str, str]:
    options: dict[str, str] = {}
    for opt in host_config.get("SecurityOpt") or []:
        match = _SECURITY_OPT.match(str(opt))
        if not match:
            raise InvalidConfig(f"invalid --security-opt: {opt!r}")
        key, value = match.group(1), match.group(2) or "true"
        if key not in ("seccomp", "no-new-privileges", "apparmor", "label"):
            raise InvalidConfig(f"invalid --security-opt 1: {opt!r}")
        options[key] = value
    return options


def build_spec(inputs: SpecInputs) -> BuiltSpec:
    config, host, image = inputs.config, inputs.host_config, inputs.image_config
    privileged = bool(host.get("Privileged"))
    hostname = str(config.get("Hostname") or inputs.container_id[:12])
    tty = bool(config.get("Tty"))
    try:
        user = resolve_user(inputs.rootfs, str(config.get("User") or image.get("User") or ""),
                            [str(g) for g in host.get("GroupAdd") or []])
    except UserError as exc:
        raise InvalidConfig(str(exc)) from exc
    caps = capabilities(host)
    security = security_options(host)
    workdir = str(config.get("WorkingDir") or image.get("WorkingDir") or "/")
    if not workdir.startswith("/"):
        raise InvalidConfig(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")

    process: dict[str, Any] = {
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "args": command_line(config, image),
        "env": environment(config, image, hostname, tty),
        "cwd": workdir,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": security.get("no-new-privileges", "false") == "true",
    }
    if host.get("OomScoreAdj"):
        process["oomScoreAdj"] = int(host["OomScoreAdj"])
    rlimits = []
    for ulimit in host.get("Ulimits") or []:
        name = str(ulimit.get("Name", ""))
        rlimits.append({"type": f"RLIMIT_{name.upper()}", "soft": int(ulimit["Soft"]), "hard": int(ulimit["Hard"])})
    if rlimits:
        process["rlimits"] = rlimits

    mounts = default_mounts(host, privileged)
    for destination, source in inputs.etc_files.items():
        mounts.append({"destination": destination, "type": "bind", "source": source,
                       "options": ["rbind", "rprivate"]})
    # Binds, --mount, --tmpfs and volumes, already resolved to host paths by the volumes layer.
    mounts.extend(inputs.mounts)

    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    network_mode = str(host.get("NetworkMode") or "default")
    if network_mode == "host":
        if config.get("Hostname"):
            raise InvalidConfig("conflicting options: hostname and the network mode")
        hostname = _host_name()
    elif inputs.netns_path:
        namespaces.append({"type": "network", "path": inputs.netns_path})
    else:
        namespaces.append({"type": "network"})
    if inputs.cgroup_v2:
        namespaces.append({"type": "cgroup"})

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources(host, privileged),
        "cgroupsPath": inputs.cgroups_path,
    }
    if not privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        seccomp = security.get("seccomp")
        if seccomp is None or seccomp == "builtin":
            linux["seccomp"] = default_seccomp(caps)
        elif seccomp != "unconfined":
            linux["seccomp"] = _custom_seccomp(seccomp, caps)
    if host.get("Sysctls"):
        linux["sysctl"] = {str(k): str(v) for k, v in host["Sysctls"].items()}

    spec: dict[str, Any] = {
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": inputs.rootfs, "readonly": bool(host.get("ReadonlyRootfs"))},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {"org.opencontainers.image.stopSignal": str(config.get("StopSignal") or "SIGTERM")},
    }
    if config.get("Domainname"):
        spec["domainname"] = str(config["Domainname"])
    return BuiltSpec(spec, user)


def _custom_seccomp(profile_json: str, caps: Sequence[str]) -> dict[str, Any]:
    import json

    from engine.runtime.seccomp import docker_profile_to_oci

    try:
        profile = json.loads(profile_json)
    except ValueError as exc:
        raise InvalidConfig(f"decoding seccomp profile failed: {exc}") from exc
    if not isinstance(profile, dict):
        raise InvalidConfig("decoding seccomp profile failed: want a JSON object")
    return docker_profile_to_oci(profile, caps)


def _host_name() -> str:
    import os

    return os.uname().nodename

"""System endpoints: /_ping, /version, /info."""

from __future__ import annotations

import logging
import os
import platform
import sys
from typing import Any, Protocol

from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import API_VERSION, MIN_API_VERSION, Router
from engine.version import BERTH_VERSION


class SystemBackend(Protocol):
    """What the daemon tells the API about itself (moby's router/system backend)."""

    def engine_id(self) -> str: ...
    def data_root(self) -> str: ...
    def container_counts(self) -> dict[str, int]: ...
    def image_count(self) -> int: ...
    def cgroup_version(self) -> str: ...
    def live_restore(self) -> bool: ...
    def runtimes(self) -> dict[str, Any]: ...
    def registry_mirrors(self) -> list[str]: ...
    def insecure_registries(self) -> list[str]: ...
    def events_listeners(self) -> int: ...
    def disk_usage(self) -> dict[str, Any]: ...


_PING_HEADERS = [
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Swarm", "inactive"),
    # Berth implements the classic builder (POST /build), so the CLI must not pick BuildKit.
    ("Builder-Version", "1"),
]


def _os_release() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _read_flag(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version_body() -> dict[str, Any]:
    uname = os.uname()
    python = f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return {
        "Platform": {"Name": "Berth Engine"},
        "Components": [
            {
                "Name": "Engine",
                "Version": BERTH_VERSION,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": _arch(),
                    "KernelVersion": uname.release,
                    "GoVersion": python,
                    "GitCommit": "",
                    "Experimental": "false",
                },
            }
        ],
        "Version": BERTH_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": python,
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": uname.release,
        "Experimental": False,
    }


def info_body(backend: SystemBackend) -> dict[str, Any]:
    counts = backend.container_counts()
    uname = os.uname()
    return {
        "ID": backend.engine_id(),
        "Containers": counts.get("total", 0),
        "ContainersRunning": counts.get("running", 0),
        "ContainersPaused": counts.get("paused", 0),
        "ContainersStopped": counts.get("stopped", 0),
        "Images": backend.image_count(),
        "Driver": "overlay2",
        "DriverStatus": [],
        "DockerRootDir": backend.data_root(),
        # Only what is served today; each area adds its drivers as it lands.
        "Plugins": {"Volume": [], "Network": [], "Log": [], "Authorization": None},
        "MemoryLimit": True,
        "SwapLimit": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": _read_flag("/proc/sys/net/ipv4/ip_forward"),
        "Debug": logging.getLogger().isEnabledFor(logging.DEBUG),  # --debug, or `debug` reloaded by SIGHUP
        "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": 0,
        "SystemTime": _now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": backend.cgroup_version(),
        "NEventsListener": backend.events_listeners(),
        "KernelVersion": uname.release,
        "OperatingSystem": _os_release(),
        "OSType": "linux",
        "OSVersion": "",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": _registry_config(backend),
        "GenericResources": None,
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": uname.nodename,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": BERTH_VERSION,
        **backend.runtimes(),
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": False},
        "LiveRestoreEnabled": backend.live_restore(),
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }


def _registry_config(backend: SystemBackend) -> dict[str, Any]:
    """dockerd's shape: CIDRs in InsecureRegistryCIDRs, host names as non-secure IndexConfigs."""
    import ipaddress

    cidrs, names = ["127.0.0.0/8"], []
    for entry in backend.insecure_registries():
        try:
            cidrs.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            names.append(entry)
    index = {name: {"Name": name, "Mirrors": [], "Secure": False, "Official": False} for name in names}
    return {"InsecureRegistryCIDRs": cidrs, "IndexConfigs": index, "Mirrors": backend.registry_mirrors()}


def _now_rfc3339() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def register(router: Router, backend: SystemBackend) -> None:
    async def ping(request: Request, conn: HTTPConnection) -> Response:
        body = "" if request.method == "HEAD" else "OK"
        response = Response.text(body)
        response.headers.extend(_PING_HEADERS)
        return response

    async def version(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(version_body())

    async def info(request: Request, conn: HTTPConnection) -> Response:
        return Response.json(info_body(backend))

    async def df(request: Request, conn: HTTPConnection) -> Response:
        import asyncio

        return Response.json(await asyncio.to_thread(backend.disk_usage))

    router.add("GET", "/system/df", df)
    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)

"""`berth version` and `berth info` default layouts, shared by the commands (commands/system.py) and the fast path
(fast.py).

Imports only os and sys: the fast path prints it without loading argparse or the client.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's (start-up cost); mypy reads the name the same way
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def arch() -> str:
    machine = os.uname().machine  # platform.machine() (platform costs ~1.4 ms of `berth version`)
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def python_version() -> str:
    return f"python{sys.version.split()[0]}"  # platform.python_version(), without importing platform


def api_line(negotiated: str, client_api: str) -> str:
    return negotiated if negotiated == client_api else f"{negotiated} (downgraded from {client_api})"


def _rows(rows: list[tuple[str, str]], indent: int = 1) -> list[str]:
    return [f"{' ' * indent}{label + ':':<{19 - indent}}{value}" for label, value in rows]


def version_text(server: Mapping[str, Any], negotiated: str, client_api: str, address: str) -> str:
    """Client and Server sections, as `docker version` lays them out; `negotiated` is the API version in use."""
    from engine.version import BERTH_VERSION

    lines = ["Client:"]
    lines += _rows([("Version", BERTH_VERSION), ("API version", api_line(negotiated, client_api)),
                    ("Python version", python_version()), ("OS/Arch", f"{sys.platform}/{arch()}"),
                    ("Engine address", address)])
    lines += ["", f"Server: {server.get('Platform', {}).get('Name', '')}"]
    for component in server.get("Components", []):
        details = component.get("Details", {})
        api = f"{details.get('ApiVersion', '')} (minimum version {details.get('MinAPIVersion', '')})"
        lines.append(f" {component['Name']}:")
        lines += _rows([("Version", component.get("Version", "")),
                        ("API version", api),
                        ("Runtime", details.get("GoVersion", "")),
                        ("OS/Arch", f"{details.get('Os', '')}/{details.get('Arch', '')}"),
                        ("Kernel", details.get("KernelVersion", ""))], indent=2)
    return "".join(line + "\n" for line in lines)


def info_text(data: Mapping[str, Any]) -> tuple[str, str]:
    """`berth info`'s layout (stdout) and the engine's warnings (stderr)."""
    from engine.humanize import human_size

    rows = [
        ("Containers", data["Containers"]),
        (" Running", data["ContainersRunning"]),
        (" Paused", data["ContainersPaused"]),
        (" Stopped", data["ContainersStopped"]),
        ("Images", data["Images"]),
        ("Server Version", data["ServerVersion"]),
        ("Storage Driver", data["Driver"]),
        ("Logging Driver", data["LoggingDriver"]),
        ("Cgroup Driver", data["CgroupDriver"]),
        ("Cgroup Version", data["CgroupVersion"]),
        ("Runtimes", " ".join(sorted(data.get("Runtimes") or {}))),
        ("Default Runtime", data["DefaultRuntime"]),
        ("Kernel Version", data["KernelVersion"]),
        ("Operating System", data["OperatingSystem"]),
        ("Architecture", data["Architecture"]),
        ("CPUs", data["NCPU"]),
        ("Total Memory", human_size(data["MemTotal"], binary=True)),
        ("Name", data["Name"]),
        ("ID", data["ID"]),
        ("Berth Root Dir", data["DockerRootDir"]),
        ("Registry Mirrors", ", ".join(data["RegistryConfig"].get("Mirrors") or []) or "none"),
    ]
    out = "Server:\n" + "".join(f" {label}: {value}\n" for label, value in rows)
    return out, "".join(f"{warning}\n" for warning in data.get("Warnings") or [])

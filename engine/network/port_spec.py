"""Published-port specs: the CLI's `-p [hostIp:][hostPort:]containerPort[/proto]` and the API's PortBindings."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import cast

from engine.network.errors import InvalidParameter
from engine.network.firewall_rules import Proto

PROTOS = ("tcp", "udp")


@dataclass(frozen=True)
class PortSpec:
    container_port: int
    proto: Proto = "tcp"
    host_ip: IPv4Address | None = None  # None: all addresses (0.0.0.0)
    host_port: int | None = None  # None: a random free port, reported back

    def key(self) -> str:
        """The API's port key, "80/tcp"."""
        return f"{self.container_port}/{self.proto}"


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidParameter(f"invalid {what} port: {text!r} (port ranges are not supported)")
    return int(text)


def _proto(text: str) -> Proto:
    if text not in PROTOS:
        raise InvalidParameter(f"invalid proto: {text!r}")
    return cast(Proto, text)


def _host_ip(text: str) -> IPv4Address | None:
    if text in ("", "0.0.0.0"):
        return None
    try:
        return IPv4Address(text)
    except ValueError as exc:
        raise InvalidParameter(f"invalid IP address: {text!r} (IPv6 is not supported yet)") from exc


def parse_port_spec(text: str) -> PortSpec:
    """`80`, `80/udp`, `8080:80`, `127.0.0.1::80`, `127.0.0.1:8080:80/udp` (docker/go-connections nat.ParsePortSpec)."""
    spec, _, proto = text.partition("/")
    parts = spec.split(":")
    if len(parts) > 3:
        raise InvalidParameter(f"invalid port spec: {text!r}")
    host_ip = _host_ip(parts[0]) if len(parts) == 3 else None
    host_port_text = parts[-2] if len(parts) >= 2 else ""
    return PortSpec(
        container_port=_port(parts[-1], "container"),
        proto=_proto(proto or "tcp"),
        host_ip=host_ip,
        host_port=_port(host_port_text, "host") if host_port_text else None,
    )


def from_port_bindings(bindings: dict[str, list[dict[str, str]] | None]) -> list[PortSpec]:
    """The API's HostConfig.PortBindings: {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}."""
    specs = []
    for key, entries in bindings.items():
        port_text, _, proto = key.partition("/")
        for entry in entries or [{}]:
            host_port = entry.get("HostPort", "")
            specs.append(PortSpec(
                container_port=_port(port_text, "container"),
                proto=_proto(proto or "tcp"),
                host_ip=_host_ip(entry.get("HostIp", "")),
                host_port=_port(host_port, "host") if host_port else None,
            ))
    return specs

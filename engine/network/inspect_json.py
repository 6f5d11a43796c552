"""The network layer's state in the Engine API's shapes (v1.51 swagger), for the daemon's inspect handlers.

  EndpointSettings       containers/{id}/json -> NetworkSettings.Networks[<name>]
  PortMap                containers/{id}/json -> NetworkSettings.Ports
  IPAM                   networks/{id} -> IPAM
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.network.bridge import Endpoint
from engine.network.ipam_store import SubnetRecord
from engine.network.port_spec import PortSpec
from engine.network.portmap import PortBinding


def endpoint_settings(
    endpoint: Endpoint, network_id: str, endpoint_id: str, aliases: Sequence[str] = (), dns_names: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": list(aliases) or None,
        "MacAddress": endpoint.mac_address,
        "DriverOpts": None,
        "NetworkID": network_id,
        "EndpointID": endpoint_id,
        "Gateway": str(endpoint.gateway) if endpoint.gateway else "",
        "IPAddress": str(endpoint.address.ip),
        "IPPrefixLen": endpoint.address.network.prefixlen,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": list(dns_names) or None,
    }


PortMap = dict[str, list[dict[str, str]] | None]


def port_map(bindings: Sequence[PortBinding], exposed: Sequence[PortSpec] = ()) -> PortMap:
    """Published ports with their host bindings; exposed-only ports map to None, like dockerd."""
    ports: PortMap = {spec.key(): None for spec in exposed}
    for binding in bindings:
        key, host = binding.api()
        current = ports.get(key)
        ports[key] = [*(current or []), host]
    return ports


def ipam_json(record: SubnetRecord) -> dict[str, Any]:
    return {
        "Driver": "default",
        "Options": None,
        "Config": [{"Subnet": str(record.subnet), "Gateway": str(record.gateway)}],
    }

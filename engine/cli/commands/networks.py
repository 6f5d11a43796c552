"""`berth network create|ls|inspect|rm|connect|disconnect|prune` over Docker's /networks API
(docker's cli/command/network; request shapes from the Engine API 1.51 swagger)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.cli.context import CLIContext, StatusError, UsageError

NETWORK_HEADERS = {
    "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
    "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}
NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


def _bool(value: Any) -> str:
    return "true" if value else "false"


def go_time_text(rfc3339: str) -> str:
    """The API's RFC 3339 time as Go's time.Time.String() prints it: `2026-11-28 00:25:27.565682172 +0000 UTC`."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not match:
        return rfc3339
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "").rstrip("0").rstrip(".")
    offset = "+0000 UTC" if zone == "Z" else f"{zone.replace(':', '')} {zone.replace(':', '')}"
    return f"{day} {clock}{fraction} {offset}"


def network_row(network: Mapping[str, Any], trunc: bool = True) -> dict[str, str]:
    from engine.cli.rows import LabeledRow, labels_text

    network_id = str(network.get("Id") or "")
    return LabeledRow({
        "ID": network_id[:12] if trunc else network_id, "Name": str(network.get("Name") or ""),
        "Driver": str(network.get("Driver") or ""), "Scope": str(network.get("Scope") or ""),
        "IPv4": _bool(network.get("EnableIPv4", True)), "IPv6": _bool(network.get("EnableIPv6")),
        "Internal": _bool(network.get("Internal")), "Labels": labels_text(network.get("Labels")),
        "CreatedAt": go_time_text(str(network.get("Created") or "")),
    }, network.get("Labels"))


def _ipam_config(opts: Any) -> list[dict[str, Any]]:
    """--subnet/--ip-range/--gateway/--aux-address line up by position, one pool per --subnet (docker's
    consolidateIpam, simplified: ranges and gateways apply to the subnet given in the same position)."""
    from engine.cli.objects import parse_key_values

    if (opts.ip_range or opts.gateway or opts.aux_address) and not opts.subnet:
        raise UsageError("every ip-range or gateway must have a corresponding subnet", exit_code=1)
    if len(opts.ip_range) > len(opts.subnet) or len(opts.gateway) > len(opts.subnet):
        raise UsageError("every ip-range or gateway must have a corresponding subnet", exit_code=1)
    pools = []
    for i, subnet in enumerate(opts.subnet):
        pool: dict[str, Any] = {"Subnet": subnet}
        if i < len(opts.ip_range):
            pool["IPRange"] = opts.ip_range[i]
        if i < len(opts.gateway):
            pool["Gateway"] = opts.gateway[i]
        if i == 0 and opts.aux_address:
            pool["AuxiliaryAddresses"] = parse_key_values(opts.aux_address)
        pools.append(pool)
    return pools


def create(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("network create", "Create a network")
    p.add_argument("-d", "--driver", default="bridge", help="Driver to manage the Network")
    p.add_argument("-o", "--opt", action="append", default=[], help="Set driver specific options")
    p.add_argument("--label", action="append", default=[], help="Set metadata on a network")
    p.add_argument("--internal", action="store_true", help="Restrict external access to the network")
    p.add_argument("--attachable", action="store_true", help="Enable manual container attachment")
    # --ipv4/--ipv6 are Go bool flags (`--ipv4`, `--ipv4=false`): p.go_bools reads them.
    p.add_argument("--ipv4", action="store_true", help="Enable or disable IPv4 address assignment (--ipv4=false)")
    p.add_argument("--ipv6", action="store_true", help="Enable or disable IPv6 address assignment")
    p.add_argument("--subnet", action="append", default=[], help="Subnet in CIDR format")
    p.add_argument("--ip-range", action="append", default=[], help="Allocate container ip from a sub-range")
    p.add_argument("--gateway", action="append", default=[], help="IPv4 or IPv6 Gateway for the master subnet")
    p.add_argument("--aux-address", action="append", default=[], help="Auxiliary IPv4 or IPv6 addresses")
    p.add_argument("--ipam-driver", default="default", help="IP Address Management Driver")
    p.add_argument("--ipam-opt", action="append", default=[], help="Set IPAM driver specific options")
    p.add_argument("network", metavar="NETWORK")
    args, families = p.go_bools(args, ("--ipv4", "--ipv6"))
    opts = p.parse_args(args)
    from engine.cli.objects import parse_key_values

    body = {
        "Name": opts.network, "Driver": opts.driver, "Internal": opts.internal, "Attachable": opts.attachable,
        # Only when given, as docker 28 does: the engine's default otherwise.
        "EnableIPv4": families.get("--ipv4"), "EnableIPv6": families.get("--ipv6"),
        "Options": parse_key_values(opts.opt),
        "Labels": parse_key_values(opts.label),
        "IPAM": {"Driver": opts.ipam_driver, "Config": _ipam_config(opts),
                 "Options": parse_key_values(opts.ipam_opt)},
    }
    created = ctx.client.post("/networks/create", json=body)
    if created.get("Warning"):
        ctx.warn(f"WARNING: {created['Warning']}")
    ctx.print(str(created["Id"]))
    return 0


def ls(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("network ls", "List networks")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")
    p.add_argument("-f", "--filter", action="append", default=[], help="Provide filter values (e.g. 'driver=bridge')")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output")
    opts = p.parse_args(args)
    from engine.cli.commands.port import natural_key
    from engine.cli.formatter import NETWORKS_ERRORS, write_list
    from engine.cli.output import parse_filter_flags

    networks = ctx.client.get("/networks", {"filters": parse_filter_flags(opts.filter) or None}) or []
    networks.sort(key=lambda n: natural_key(str(n.get("Name"))))
    fmt = "{{.ID}}" if opts.quiet else opts.format or NETWORK_TABLE
    write_list(ctx, fmt, [network_row(n, trunc=not opts.no_trunc) for n in networks], NETWORK_HEADERS,
               NETWORKS_ERRORS)
    return 0


def inspect(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("network inspect", "Display detailed information on one or more networks")
    p.add_argument("-f", "--format", help="Format output using a Go template or 'json'")
    p.add_argument("-v", "--verbose", action="store_true", help="Verbose output for diagnostics")
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    opts = p.parse_args(args)
    from engine.cli.objects import inspect_each

    query = {"verbose": opts.verbose or None}
    return inspect_each(ctx, opts.networks, lambda name: ctx.client.get(f"/networks/{name}", query), opts.format)


def rm(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("network rm", "Remove one or more networks")
    p.add_argument("-f", "--force", action="store_true", help="Do not error if the network does not exist")
    p.add_argument("networks", nargs="+", metavar="NETWORK")
    opts = p.parse_args(args)
    from engine.cli.objects import each
    from engine.client.errors import NotFound

    def remove(name: str) -> None:
        try:
            ctx.client.delete(f"/networks/{name}")
        except NotFound:
            if not opts.force:
                raise

    if each(ctx, opts.networks, remove):
        raise StatusError("exit status 1", 1)  # docker's network rm ends its error list with this line
    return 0


def connect(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("network connect", "Connect a container to a network")
    p.add_argument("--alias", action="append", default=[], help="Add network-scoped alias for the container")
    p.add_argument("--ip", help="IPv4 address (e.g., \"172.30.100.104\")")
    p.add_argument("--ip6", help="IPv6 address (e.g., \"2001:db8::33\")")
    p.add_argument("--link", action="append", default=[], help="Add link to another container")
    p.add_argument("--driver-opt", action="append", default=[], help="driver options for the network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    opts = p.parse_args(args)
    from engine.cli.objects import parse_key_values

    endpoint: dict[str, Any] = {"Aliases": opts.alias or None, "Links": opts.link or None,
                                "DriverOpts": parse_key_values(opts.driver_opt) or None}
    if opts.ip or opts.ip6:
        endpoint["IPAMConfig"] = {"IPv4Address": opts.ip or "", "IPv6Address": opts.ip6 or ""}
    ctx.client.post(f"/networks/{opts.network}/connect", json={"Container": opts.container,
                                                               "EndpointConfig": endpoint})
    return 0


def disconnect(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("network disconnect", "Disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true", help="Force the container to disconnect from a network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    opts = p.parse_args(args)
    ctx.client.post(f"/networks/{opts.network}/disconnect", json={"Container": opts.container,
                                                                  "Force": opts.force})
    return 0


def prune(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("network prune", "Remove all unused networks")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'until=<timestamp>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    opts = p.parse_args(args)
    from engine.cli.objects import confirm
    from engine.cli.output import parse_filter_flags

    warning = "WARNING! This will remove all custom networks not used by at least one container."
    if not confirm(ctx, warning, opts.force):
        return 0
    report = ctx.client.post("/networks/prune", {"filters": parse_filter_flags(opts.filter) or None}) or {}
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        ctx.print("Deleted Networks:")
        for name in deleted:
            ctx.print(str(name))
    return 0

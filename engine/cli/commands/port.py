"""`berth port`: a container's published ports, read from inspect's NetworkSettings.Ports (docker's port.go)."""

from __future__ import annotations

import re

from engine.cli.context import CLIContext, StatusError


def natural_key(text: str) -> list[tuple[int, str]]:
    # sortorder.NaturalLess: digit runs compare as numbers (`8080/tcp` after `443/tcp`).
    return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", text) if part]


def _host_port(binding: dict[str, str]) -> str:
    ip = binding.get("HostIp") or ""
    return f"[{ip}]:{binding.get('HostPort', '')}" if ":" in ip else f"{ip}:{binding.get('HostPort', '')}"


def port(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("port", "List port mappings or a specific mapping for the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    opts = p.parse_args(args)
    info = ctx.client.get(f"/containers/{opts.container}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if opts.private:
        number, _, proto = opts.private.partition("/")
        if not number.isdigit():
            raise StatusError(f"Error: invalid port ({number}): must be a number", 1)
        wanted = f"{number}/{proto or 'tcp'}"
        bindings = ports.get(wanted)
        if not bindings:
            raise StatusError(f"Error: No public port '{opts.private}' published for {opts.container}", 1)
        lines = [_host_port(b) for b in bindings]
    else:
        lines = [f"{private} -> {_host_port(b)}" for private, bindings in ports.items() for b in bindings or []]
    for line in sorted(lines, key=natural_key):
        ctx.print(line)
    return 0

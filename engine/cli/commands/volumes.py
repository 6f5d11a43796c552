"""`berth volume create|ls|inspect|rm|prune` over /volumes (docker's cli/command/volume)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from engine.cli.context import CLIContext, UsageError

VOLUME_HEADERS = {
    "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS",
    "Links": "LINKS", "Size": "SIZE", "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS",
}
VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"


def volume_row(volume: Mapping[str, Any]) -> dict[str, str]:
    from engine.cli.rows import LabeledRow, labels_text
    from engine.humanize import human_size

    usage = volume.get("UsageData") or {}
    size, refs = usage.get("Size", -1), usage.get("RefCount", -1)
    return LabeledRow({
        "Name": str(volume.get("Name") or ""), "Driver": str(volume.get("Driver") or ""),
        "Scope": str(volume.get("Scope") or ""), "Mountpoint": str(volume.get("Mountpoint") or ""),
        "Labels": labels_text(volume.get("Labels")),
        "Links": str(refs) if refs is not None and refs >= 0 else "N/A",
        "Size": human_size(size, precision=4) if size is not None and size >= 0 else "N/A",  # units.HumanSize
        "Group": "N/A", "Availability": "N/A", "Status": "N/A",  # cluster volumes only, as in docker
    }, volume.get("Labels"))


def create(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("volume create", "Create a volume")
    p.add_argument("-d", "--driver", default="local", help="Specify volume driver name")
    p.add_argument("-o", "--opt", action="append", default=[], help="Set driver specific options")
    p.add_argument("--label", action="append", default=[], help="Set metadata for a volume")
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("volume", nargs="?", metavar="VOLUME")
    opts = p.parse_args(args)
    from engine.cli.objects import parse_key_values

    if opts.name and opts.volume and opts.name != opts.volume:
        raise UsageError("conflicting options: cannot specify a volume-name through both --name and as a "
                         "positional arg", exit_code=1)
    body = {"Name": opts.volume or opts.name or "", "Driver": opts.driver,
            "DriverOpts": parse_key_values(opts.opt), "Labels": parse_key_values(opts.label)}
    created = ctx.client.post("/volumes/create", json=body)
    ctx.print(str(created["Name"]))
    return 0


def ls(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("volume ls", "List volumes")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    p.add_argument("-f", "--filter", action="append", default=[], help="Provide filter values (e.g. 'dangling=true')")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    opts = p.parse_args(args)
    from engine.cli.commands.port import natural_key
    from engine.cli.formatter import write_list
    from engine.cli.output import parse_filter_flags

    listed = ctx.client.get("/volumes", {"filters": parse_filter_flags(opts.filter) or None}) or {}
    for warning in listed.get("Warnings") or []:
        ctx.warn(f"WARNING: {warning}")
    volumes = sorted(listed.get("Volumes") or [], key=lambda v: natural_key(str(v.get("Name"))))
    fmt = "{{.Name}}" if opts.quiet else opts.format or VOLUME_TABLE
    write_list(ctx, fmt, [volume_row(v) for v in volumes], VOLUME_HEADERS)
    return 0


def inspect(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("volume inspect", "Display detailed information on one or more volumes")
    p.add_argument("-f", "--format", help="Format output using a Go template or 'json'")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    opts = p.parse_args(args)
    from engine.cli.objects import inspect_each

    return inspect_each(ctx, opts.volumes, lambda name: ctx.client.get(f"/volumes/{name}"), opts.format)


def rm(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("volume rm", "Remove one or more volumes")
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of one or more volumes")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    opts = p.parse_args(args)
    from engine.cli.objects import each

    return each(ctx, opts.volumes, lambda name: ctx.client.delete(f"/volumes/{name}", {"force": opts.force or None}))


def prune(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("volume prune", "Remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused volumes, not just anonymous ones")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'label=<label>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    opts = p.parse_args(args)
    from engine.cli.objects import confirm
    from engine.cli.output import parse_filter_flags
    from engine.humanize import human_size

    filters = parse_filter_flags(opts.filter)
    if opts.all:
        filters["all"] = ["true"]
    which = "all local volumes" if opts.all else "anonymous local volumes"
    if not confirm(ctx, f"WARNING! This will remove {which} not used by at least one container.", opts.force):
        return 0
    report = ctx.client.post("/volumes/prune", {"filters": filters or None}) or {}
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        ctx.print("Deleted Volumes:")
        for name in deleted:
            ctx.print(str(name))
        ctx.print()
    ctx.print(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}")
    return 0

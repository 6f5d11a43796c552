"""What takes space and how to get it back: `system df`, `system prune`, `container prune`, `image prune`.

Output as docker's cli/command/{system,container,image}: df's table (cli/command/formatter/disk_usage.go,
sizes in units.HumanSize's 4 significant digits) and the prune reports, one section per kind deleted, then
"Total reclaimed space".
"""

from __future__ import annotations

from typing import Any

from engine.cli.context import CLIContext
from engine.humanize import human_size

DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"


def _size(value: float) -> str:
    return human_size(value, precision=4)  # units.HumanSize


def _with_share(reclaimable: int, total: int) -> str:
    return f"{_size(reclaimable)} ({reclaimable * 100 // total}%)" if total > 0 else _size(reclaimable)


def df_rows(usage: dict[str, Any]) -> list[dict[str, str]]:
    """The four summary rows of `docker system df` from GET /system/df."""
    images = usage.get("Images") or []
    containers = usage.get("Containers") or []
    volumes = usage.get("Volumes") or []
    cache = usage.get("BuildCache") or []
    layers = int(usage.get("LayersSize") or 0)
    used = sum(int(i.get("Size") or 0) - int(i.get("SharedSize") or 0) for i in images
               if int(i.get("Containers") or 0) > 0 and int(i.get("SharedSize") or 0) != -1)
    active_states = ("running", "paused", "restarting")
    container_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    idle_size = sum(int(c.get("SizeRw") or 0) for c in containers if c.get("State") not in active_states)
    volume_sizes = [(int((v.get("UsageData") or {}).get("Size", -1)), int((v.get("UsageData") or {}).get(
        "RefCount", 0))) for v in volumes]
    volume_size = sum(size for size, _ in volume_sizes if size > 0)
    cache_size = sum(int(c.get("Size") or 0) for c in cache if not c.get("Shared"))
    cache_used = sum(int(c.get("Size") or 0) for c in cache if c.get("InUse") and not c.get("Shared"))
    return [
        {"Type": "Images", "TotalCount": str(len(images)),
         "Active": str(sum(1 for i in images if int(i.get("Containers") or 0) > 0)),
         "Size": _size(layers), "Reclaimable": _with_share(layers - used, layers)},
        {"Type": "Containers", "TotalCount": str(len(containers)),
         "Active": str(sum(1 for c in containers if c.get("State") in active_states)),
         "Size": _size(container_size), "Reclaimable": _with_share(idle_size, container_size)},
        {"Type": "Local Volumes", "TotalCount": str(len(volumes)),
         "Active": str(sum(1 for _, refs in volume_sizes if refs > 0)), "Size": _size(volume_size),
         "Reclaimable": _with_share(sum(size for size, refs in volume_sizes if size > 0 and refs == 0),
                                    volume_size)},
        {"Type": "Build Cache", "TotalCount": str(len(cache)),
         "Active": str(sum(1 for c in cache if c.get("InUse"))), "Size": _size(cache_size),
         "Reclaimable": _size(int(usage.get("BuilderSize") or cache_size) - cache_used)},
    ]


def df(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("system df", "Show docker disk usage")
    p.add_argument("--format", help="Format output using a custom template: 'table', 'json' or a Go template")
    p.add_argument("-v", "--verbose", action="store_true", help="Show detailed information on space usage")
    opts = p.parse_args(args)
    from engine.cli.formatter import write_list

    usage = ctx.client.get("/system/df")
    if opts.verbose:
        if opts.format:
            from engine.cli.context import StatusError

            raise StatusError("berth: --format with --verbose is not supported yet (the tables are)", 1)
        _df_verbose(ctx, usage)
        return 0
    write_list(ctx, opts.format or DF_TABLE, df_rows(usage), DF_HEADERS)
    return 0


# docker's verbose tables (cli/command/formatter/disk_usage.go).
_DF_IMAGES = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}"
              "\t{{.UniqueSize}}\t{{.Containers}}")
_DF_CONTAINERS = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}"
                  "\t{{.Status}}\t{{.Names}}")
_DF_VOLUMES = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
_DF_CACHE = ("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}"
             "\t{{.Shared}}")
_CACHE_HEADERS = {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED",
                  "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}


def _df_verbose(ctx: CLIContext, usage: dict[str, Any]) -> None:
    from engine.cli.commands.volumes import VOLUME_HEADERS, volume_row
    from engine.cli.formatter import write_list
    from engine.cli.rows import CONTAINER_HEADERS, IMAGE_HEADERS, ago, container_row, image_rows

    ctx.print("Images space usage:\n")
    write_list(ctx, _DF_IMAGES, [r for i in usage.get("Images") or [] for r in image_rows(i)], IMAGE_HEADERS)
    ctx.print("\nContainers space usage:\n")
    write_list(ctx, _DF_CONTAINERS, [container_row(c) for c in usage.get("Containers") or []], CONTAINER_HEADERS)
    ctx.print("\nLocal Volumes space usage:\n")
    write_list(ctx, _DF_VOLUMES, [volume_row(v) for v in usage.get("Volumes") or []], VOLUME_HEADERS)
    cache = usage.get("BuildCache") or []
    ctx.print(f"\nBuild cache usage: {_size(sum(int(c.get('Size') or 0) for c in cache))}\n")

    def since(text: str | None) -> str:
        from datetime import datetime

        try:
            return ago(datetime.fromisoformat(text).timestamp()) if text else ""
        except ValueError:
            return str(text)

    rows = [{"ID": str(c.get("ID") or ""), "CacheType": str(c.get("Type") or ""),
             "Size": human_size(int(c.get("Size") or 0)), "CreatedSince": since(c.get("CreatedAt")),
             "LastUsedSince": since(c.get("LastUsedAt")), "UsageCount": str(c.get("UsageCount") or 0),
             "Shared": "true" if c.get("Shared") else "false"} for c in cache]
    write_list(ctx, _DF_CACHE, rows, _CACHE_HEADERS)


def _section(ctx: CLIContext, title: str, lines: list[str]) -> None:
    if lines:
        ctx.print(title)
        for line in lines:
            ctx.print(line)
        ctx.print()


def _containers(ctx: CLIContext, filters: dict[str, list[str]]) -> int:
    report = ctx.client.post("/containers/prune", {"filters": filters or None}) or {}
    _section(ctx, "Deleted Containers:", [str(i) for i in report.get("ContainersDeleted") or []])
    return int(report.get("SpaceReclaimed") or 0)


def _networks(ctx: CLIContext, filters: dict[str, list[str]]) -> int:
    report = ctx.client.post("/networks/prune", {"filters": filters or None}) or {}
    _section(ctx, "Deleted Networks:", [str(n) for n in report.get("NetworksDeleted") or []])
    return 0


def _volumes(ctx: CLIContext, filters: dict[str, list[str]]) -> int:
    report = ctx.client.post("/volumes/prune", {"filters": filters or None}) or {}
    _section(ctx, "Deleted Volumes:", [str(v) for v in report.get("VolumesDeleted") or []])
    return int(report.get("SpaceReclaimed") or 0)


def _images(ctx: CLIContext, filters: dict[str, list[str]], all_images: bool) -> int:
    report = ctx.client.post("/images/prune", {"filters": dict(filters, dangling=[
        "false" if all_images else "true"])}) or {}
    lines = [f"{key.lower()}: {item[key]}" for item in report.get("ImagesDeleted") or []
             for key in ("Untagged", "Deleted") if item.get(key)]
    _section(ctx, "Deleted Images:", lines)
    return int(report.get("SpaceReclaimed") or 0)


def _build_cache(ctx: CLIContext, all_cache: bool) -> int:
    report = ctx.client.post("/build/prune", {"all": all_cache or None}) or {}
    _section(ctx, "Deleted build cache objects:", [str(c) for c in report.get("CachesDeleted") or []])
    return int(report.get("SpaceReclaimed") or 0)


def _prune_flags(ctx: CLIContext, command: str, description: str, all_help: str | None) -> Any:
    p = ctx.parser(command, description)
    if all_help:
        p.add_argument("-a", "--all", action="store_true", help=all_help)
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'until=<timestamp>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    return p


def container_prune(ctx: CLIContext, args: list[str]) -> int:
    opts = _prune_flags(ctx, "container prune", "Remove all stopped containers", None).parse_args(args)
    from engine.cli.objects import confirm
    from engine.cli.output import parse_filter_flags

    if not confirm(ctx, "WARNING! This will remove all stopped containers.", opts.force):
        return 0
    ctx.print(f"Total reclaimed space: {_size(_containers(ctx, parse_filter_flags(opts.filter)))}")
    return 0


def image_prune(ctx: CLIContext, args: list[str]) -> int:
    p = _prune_flags(ctx, "image prune", "Remove unused images", "Remove all unused images, not just dangling ones")
    opts = p.parse_args(args)
    from engine.cli.objects import confirm
    from engine.cli.output import parse_filter_flags

    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if opts.all else "WARNING! This will remove all dangling images.")
    if not confirm(ctx, warning, opts.force):
        return 0
    ctx.print(f"Total reclaimed space: {_size(_images(ctx, parse_filter_flags(opts.filter), opts.all))}")
    return 0


def system_prune(ctx: CLIContext, args: list[str]) -> int:
    p = _prune_flags(ctx, "system prune", "Remove unused data", "Remove all unused images not just dangling ones")
    p.add_argument("--volumes", action="store_true", help="Prune anonymous volumes")
    opts = p.parse_args(args)
    from engine.cli.objects import confirm
    from engine.cli.output import parse_filter_flags

    filters = parse_filter_flags(opts.filter)
    removes = ["all stopped containers", "all networks not used by at least one container"]
    if opts.volumes:
        removes.append("all anonymous volumes not used by at least one container")
    removes += (["all images without at least one container associated to them", "all build cache"] if opts.all
                else ["all dangling images", "unused build cache"])
    warning = "WARNING! This will remove:\n" + "".join(f"  - {what}\n" for what in removes)
    if not confirm(ctx, warning, opts.force):
        return 0
    reclaimed = _containers(ctx, filters) + _networks(ctx, filters)
    if opts.volumes:
        reclaimed += _volumes(ctx, filters)
    reclaimed += _images(ctx, filters, opts.all) + _build_cache(ctx, opts.all)
    ctx.print(f"Total reclaimed space: {_size(reclaimed)}")
    return 0

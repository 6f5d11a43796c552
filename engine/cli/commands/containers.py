"""Container commands: ps, create, start, stop, restart, kill, rm, wait, pause, unpause, logs, attach."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from engine.cli.context import CLIContext, StatusError


def _each(ctx: CLIContext, names: list[str], action: Callable[[str], Any], echo: bool = True) -> int:
    """docker's multi-container verbs: act on each, print it on success, report failures, exit 1 if any."""
    from engine.client.errors import APIError

    failed = False
    for name in names:
        try:
            result = action(name)
        except APIError as exc:
            ctx.warn(str(exc))
            failed = True
            continue
        if echo:
            ctx.print(name if result is None else str(result))
    return 1 if failed else 0


def ps(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("ps", "List containers")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    opts = p.parse_args(args)
    from engine.cli.formatter import PS_ERRORS, write_list
    from engine.cli.output import parse_filter_flags
    from engine.cli.rows import CONTAINER_HEADERS, PS_TABLE, container_row

    limit = 1 if opts.latest else opts.last
    query = {"all": opts.all or limit > 0 or None, "limit": limit if limit > 0 else None,
             "size": opts.size or None, "filters": parse_filter_flags(opts.filter) or None}
    entries = ctx.client.get("/containers/json", query)
    fmt = "{{.ID}}" if opts.quiet else opts.format or PS_TABLE + ("\t{{.Size}}" if opts.size else "")
    rows = [container_row(entry, trunc=not opts.no_trunc) for entry in entries]
    write_list(ctx, fmt, rows, CONTAINER_HEADERS, PS_ERRORS)
    return 0


def create(ctx: CLIContext, args: list[str]) -> int:
    from engine.cli.commands.run import create_container, parse_run_args

    opts, request = parse_run_args(ctx, "create", "Create a new container", args)
    container_id = create_container(ctx, request, opts.pull, opts.cidfile)
    ctx.print(container_id)
    return 0


def start(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("start", "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    if opts.attach or opts.interactive:
        if len(opts.containers) > 1:
            raise StatusError("you cannot start and attach multiple containers at once", 1)
        from engine.cli.attach_session import DEFAULT_DETACH_KEYS, attach_and_start, parse_detach_keys
        from engine.client.errors import APIError

        try:
            info = ctx.client.get(f"/containers/{opts.containers[0]}/json")
        except APIError as exc:
            raise StatusError(str(exc), 1) from exc
        keys = parse_detach_keys(opts.detach_keys) if opts.detach_keys else DEFAULT_DETACH_KEYS
        stdin = bool(opts.interactive and info["Config"].get("OpenStdin"))
        return attach_and_start(ctx.client, info["Id"], tty=bool(info["Config"].get("Tty")), stdin=stdin,
                                auto_remove=bool(info["HostConfig"].get("AutoRemove")), start=True,
                                detach_keys=keys)
    failed = [name for name in opts.containers
              if _each(ctx, [name], lambda n: _post_ignoring_304(ctx, f"/containers/{n}/start"))]
    if failed:
        raise StatusError(f"Error: failed to start containers: {', '.join(failed)}", 1)
    return 0


def _post_ignoring_304(ctx: CLIContext, path: str, query: dict[str, Any] | None = None) -> None:
    # "already started/stopped" is 304 with no body: success for the CLI, as in docker.
    ctx.client.request("POST", path, query)


def stop(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("stop", "Stop one or more running containers")
    p.add_argument("-t", "--timeout", "--time", type=int, help="Seconds to wait before killing the container")
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    query = {"t": opts.timeout, "signal": opts.signal}
    return _each(ctx, opts.containers, lambda name: _post_ignoring_304(ctx, f"/containers/{name}/stop", query))


def restart(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("restart", "Restart one or more containers")
    p.add_argument("-t", "--timeout", "--time", type=int, help="Seconds to wait before killing the container")
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    query = {"t": opts.timeout, "signal": opts.signal}
    return _each(ctx, opts.containers, lambda name: ctx.client.post(f"/containers/{name}/restart", query))


def kill(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("kill", "Kill one or more running containers")
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    query = {"signal": opts.signal}
    return _each(ctx, opts.containers, lambda name: ctx.client.post(f"/containers/{name}/kill", query))


def rm(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("rm", "Remove one or more containers")
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes of the container")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    query = {"force": opts.force or None, "v": opts.volumes or None}
    return _each(ctx, opts.containers, lambda name: ctx.client.delete(f"/containers/{name}", query))


def pause(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("pause", "Pause all processes within one or more containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    return _each(ctx, opts.containers, lambda name: ctx.client.post(f"/containers/{name}/pause"))


def unpause(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("unpause", "Unpause all processes within one or more containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    return _each(ctx, opts.containers, lambda name: ctx.client.post(f"/containers/{name}/unpause"))


def wait(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("wait", "Block until one or more containers stop, then print their exit codes")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)

    def one(name: str) -> int:
        stream = ctx.client.stream("POST", f"/containers/{name}/wait", {"condition": "not-running"})
        try:
            for status in stream.json_lines():
                return int(status.get("StatusCode", 0))
        finally:
            stream.close()
        return -1

    return _each(ctx, opts.containers, one)


def logs(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("logs", "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
    p.add_argument("--since", help="Show logs since timestamp or relative (e.g. 42m for 42 minutes)")
    p.add_argument("--until", help="Show logs before a timestamp or relative (e.g. 42m for 42 minutes)")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--details", action="store_true", help="Show extra details provided to logs")
    p.add_argument("container", metavar="CONTAINER")
    opts = p.parse_args(args)
    from engine.cli.output import parse_time_flag
    from engine.stdcopy import STDERR, FrameDecoder

    query = {"stdout": True, "stderr": True, "follow": opts.follow or None, "tail": opts.tail,
             "since": parse_time_flag(opts.since), "until": parse_time_flag(opts.until),
             "timestamps": opts.timestamps or None, "details": opts.details or None}
    stream = ctx.client.stream("GET", f"/containers/{opts.container}/logs", query)
    framed = stream.headers.get("content-type") != "application/vnd.docker.raw-stream"
    decoder = FrameDecoder()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        for chunk in stream.chunks():
            if not framed:
                out.write(chunk)
                out.flush()
                continue
            for channel, payload in decoder.feed(chunk):
                target = err if channel == STDERR else out
                target.write(payload)
                target.flush()
    finally:
        stream.close()
    return 0


def attach(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("attach", "Attach local standard input, output, and error streams to a running container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--sig-proxy", default="true", help="Proxy all received signals to the process")
    p.add_argument("container", metavar="CONTAINER")
    opts = p.parse_args(args)
    from engine.cli.attach_session import DEFAULT_DETACH_KEYS, attach_and_start, parse_detach_keys

    info = ctx.client.get(f"/containers/{opts.container}/json")
    if info["State"].get("Paused"):
        raise StatusError("You cannot attach to a paused container, unpause it first", 1)
    if not info["State"].get("Running"):
        raise StatusError("You cannot attach to a stopped container, start it first", 1)
    keys = parse_detach_keys(opts.detach_keys) if opts.detach_keys else DEFAULT_DETACH_KEYS
    stdin = bool(not opts.no_stdin and info["Config"].get("OpenStdin"))
    return attach_and_start(ctx.client, info["Id"], tty=bool(info["Config"].get("Tty")), stdin=stdin,
                            auto_remove=bool(info["HostConfig"].get("AutoRemove")), start=False, detach_keys=keys)


def top(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("top", "Display the running processes of a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs="*", metavar="ps OPTIONS")
    flags, rest = p.split_positionals(args)
    opts = p.parse_args(flags + rest[:1])
    from engine.cli.tabwriter import tabwrite

    listing = ctx.client.get(f"/containers/{opts.container}/top", {"ps_args": " ".join(rest[1:]) or None})
    # docker's top: tabwriter(minwidth 20, padding 3), titles then one row per process.
    rows = ["\t".join(listing.get("Titles") or [])] + ["\t".join(p) for p in listing.get("Processes") or []]
    for line in tabwrite(rows, min_width=20):
        ctx.print(line)
    return 0


def rename(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("rename", "Rename a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    opts = p.parse_args(args)
    if not opts.new_name.strip():
        raise StatusError("Error: Neither old nor new names may be empty", 1)
    from engine.client.errors import APIError

    try:
        ctx.client.request("POST", f"/containers/{opts.container}/rename", {"name": opts.new_name.strip()})
    except APIError as exc:
        raise StatusError(f"{exc}\nError: failed to rename container named {opts.container}", 1) from exc
    return 0


def update(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("update", "Update configuration of one or more containers")
    p.add_argument("--blkio-weight", type=int, help="Block IO (relative weight), between 10 and 1000, or 0 to disable")
    p.add_argument("--cpu-period", type=int, help="Limit CPU CFS (Completely Fair Scheduler) period")
    p.add_argument("--cpu-quota", type=int, help="Limit CPU CFS (Completely Fair Scheduler) quota")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--cpus", help="Number of CPUs")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    p.add_argument("-m", "--memory", help="Memory limit")
    p.add_argument("--memory-reservation", help="Memory soft limit")
    p.add_argument("--memory-swap", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
    p.add_argument("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)")
    p.add_argument("--restart", help="Restart policy to apply when a container exits")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    opts = p.parse_args(args)
    from engine.cli.container_options import ram_in_bytes, restart_policy

    body: dict[str, Any] = {"BlkioWeight": opts.blkio_weight, "CpuPeriod": opts.cpu_period,
                            "CpuQuota": opts.cpu_quota, "CpuShares": opts.cpu_shares, "CpusetCpus": opts.cpuset_cpus,
                            "CpusetMems": opts.cpuset_mems, "PidsLimit": opts.pids_limit}
    if opts.cpus:
        try:
            body["NanoCpus"] = round(float(opts.cpus) * 1e9)
        except ValueError:
            raise StatusError(f'invalid argument "{opts.cpus}" for "--cpus" flag', 125) from None
    for key, flag in (("Memory", opts.memory), ("MemoryReservation", opts.memory_reservation)):
        if flag:
            body[key] = ram_in_bytes(flag)
    if opts.memory_swap:
        body["MemorySwap"] = -1 if opts.memory_swap == "-1" else ram_in_bytes(opts.memory_swap)
    if opts.restart:
        body["RestartPolicy"] = restart_policy(opts.restart)
    body = {key: value for key, value in body.items() if value is not None}
    if not body:
        raise StatusError("you must provide one or more flags when using this command", 1)
    warnings: list[str] = []

    def one(name: str) -> None:
        warnings.extend(ctx.client.post(f"/containers/{name}/update", json=body).get("Warnings") or [])

    failed = _each(ctx, opts.containers, one)
    for warning in warnings:
        ctx.warn(warning)
    return failed

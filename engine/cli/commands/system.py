"""`berth version`, `berth info`, `berth events`."""

from __future__ import annotations

import sys
from typing import Any

from engine.cli.context import CLIContext
from engine.cli.output import format_or_default


def version(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("version", "Show the Berth version information")
    p.add_argument("-f", "--format", help="Format output using a Go template or 'json'")
    opts = p.parse_args(args)
    from engine.cli.system_text import arch, python_version, version_text
    from engine.client.protocol import CLIENT_API_VERSION
    from engine.version import BERTH_VERSION

    server = ctx.client.get("/version")
    client_part: dict[str, Any] = {
        "Platform": {"Name": "Berth"},
        "Version": BERTH_VERSION,
        "ApiVersion": ctx.client.version,
        "DefaultAPIVersion": CLIENT_API_VERSION,
        "GoVersion": python_version(),
        "Os": sys.platform,
        "Arch": arch(),
        "Context": "default",
    }
    data = {"Client": client_part, "Server": server}
    if format_or_default(ctx, opts.format, data, name="version"):
        return 0
    ctx.out.write(version_text(server, ctx.client.version, CLIENT_API_VERSION, str(ctx.client.address)))
    return 0


def info(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("info", "Display system-wide information")
    p.add_argument("-f", "--format", help="Format output using a Go template or 'json'")
    opts = p.parse_args(args)
    data = ctx.client.get("/info")
    if format_or_default(ctx, opts.format, data):
        return 0
    from engine.cli.system_text import info_text

    out, warnings = info_text(data)
    ctx.out.write(out)
    ctx.err.write(warnings)
    return 0


def events(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("events", "Get real time events from the engine")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output (key=value)")
    p.add_argument("--format", help="Format output using a Go template or 'json'")
    p.add_argument("--since", help="Show all events created since timestamp")
    p.add_argument("--until", help="Stream events until this timestamp")
    opts = p.parse_args(args)
    from engine.cli.output import parse_filter_flags, parse_time_flag

    query = {
        "filters": parse_filter_flags(opts.filter) or None,
        "since": parse_time_flag(opts.since),
        "until": parse_time_flag(opts.until),
    }
    stream = ctx.client.stream("GET", "/events", query)
    try:
        for event in stream.json_lines():
            actor = event.get("Actor") or {}
            if isinstance(actor.get("Attributes"), dict):  # a Go map: encoding/json writes its keys sorted
                actor["Attributes"] = dict(sorted(actor["Attributes"].items()))
            if format_or_default(ctx, opts.format, event):
                ctx.out.flush()  # a live stream: each event goes out as it comes, even into a pipe
                continue
            # jsonmessage.RFC3339NanoFixed in local time: `...T04:38:49.090751736Z`, or `+01:00` elsewhere.
            from engine.cli.rows import rfc3339

            seconds, nanos = divmod(int(event["timeNano"]), 1_000_000_000)
            stamp = rfc3339(seconds)
            attrs = ", ".join(f"{k}={v}" for k, v in sorted(event["Actor"]["Attributes"].items()))
            ctx.print(f"{stamp[:19]}.{nanos:09d}{stamp[19:]} {event['Type']} {event['Action']} "
                      f"{event['Actor']['ID']} ({attrs})")
            ctx.out.flush()
    finally:
        stream.close()
    return 0


def dial_stdio(ctx: CLIContext, args: list[str]) -> int:
    """Copy stdin to the engine's socket and the socket to stdout (docker's `system dial-stdio`).

    An `ssh://` client runs this on the remote: the exec channel's stdin/stdout become its HTTP
    connection (engine/cli/stdio_relay.py; engine/cli/fast.py serves the unix-socket case).
    """
    p = ctx.parser("system dial-stdio", "Proxy the stdio stream to the engine connection. "
                   "Should not be invoked manually.")
    p.parse_args(args)
    from engine.cli.stdio_relay import relay
    from engine.client.sync import connect

    return relay(connect(ctx.client.address), sys.stdin.fileno(), sys.stdout.fileno())

"""Image commands: images/image ls, image inspect|history|tag|rm|save|load, rmi, tag, save, load."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from engine.cli.context import CLIContext, StatusError


def images(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("images", "List images")
    p.add_argument("-a", "--all", action="store_true", help="Show all images (default hides intermediate images)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    opts = p.parse_args(args)
    from engine.cli.formatter import IMAGES_ERRORS, write_list
    from engine.cli.output import parse_filter_flags
    from engine.cli.rows import IMAGE_HEADERS, IMAGES_TABLE, image_rows

    filters = parse_filter_flags(opts.filter)
    if opts.repository:
        filters.setdefault("reference", []).append(opts.repository)
    entries = ctx.client.get("/images/json", {"all": opts.all or None, "filters": filters or None})
    rows = [row for entry in entries for row in image_rows(entry, trunc=not opts.no_trunc)]
    fmt = "{{.ID}}" if opts.quiet else opts.format or (
        IMAGES_TABLE.replace("{{.ID}}", "{{.Digest}}\t{{.ID}}") if opts.digests else IMAGES_TABLE)
    write_list(ctx, fmt, rows, IMAGE_HEADERS, IMAGES_ERRORS)
    return 0


def history(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("history", "Show the history of an image")
    p.add_argument("-H", "--human", default="true", help="Print sizes and dates in human readable format")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("image", metavar="IMAGE")
    opts = p.parse_args(args)
    from engine.cli.formatter import HISTORY_ERRORS, write_list
    from engine.cli.rows import HISTORY_HEADERS, HISTORY_TABLE, HISTORY_TABLE_NOT_HUMAN, history_row

    entries = ctx.client.get(f"/images/{opts.image}/history")
    human = opts.human.lower() not in ("false", "0")
    rows = [history_row(e, trunc=not opts.no_trunc, human=human) for e in entries]
    default = HISTORY_TABLE if human else HISTORY_TABLE_NOT_HUMAN
    write_list(ctx, "{{.ID}}" if opts.quiet else opts.format or default, rows, HISTORY_HEADERS, HISTORY_ERRORS)
    return 0


def tag(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    opts = p.parse_args(args)
    repo, _, tag_name = opts.target.rpartition(":") if ":" in opts.target.rpartition("/")[2] else (
        opts.target, "", "latest")
    ctx.client.request("POST", f"/images/{opts.source}/tag", {"repo": repo, "tag": tag_name or "latest"})
    return 0


def rmi(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("rmi", "Remove one or more images")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    opts = p.parse_args(args)
    from engine.client.errors import APIError

    failed = False
    for name in opts.images:
        try:
            deleted = ctx.client.delete(f"/images/{name}", {"force": opts.force or None,
                                                            "noprune": opts.no_prune or None})
        except APIError as exc:
            ctx.warn(str(exc))
            failed = True
            continue
        for item in deleted or []:
            for key in ("Untagged", "Deleted"):
                if key in item:
                    ctx.print(f"{key}: {item[key]}")
    return 1 if failed else 0


def save(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("save", "Save one or more images to a tar archive (streamed to STDOUT by default)")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("--platform", help="Save only the given platform variant")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    opts = p.parse_args(args)
    if not opts.output and sys.stdout.isatty():
        raise StatusError("cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    stream = ctx.client.stream("GET", "/images/get", {"names": opts.images, "platform": opts.platform})
    from engine.cli.output import write_stream

    write_stream(stream, opts.output)
    return 0


def _read_chunks(path: str | None) -> Iterator[bytes]:
    source = open(path, "rb") if path else sys.stdin.buffer  # noqa: SIM115 - closed below
    try:
        while chunk := source.read(1024 * 1024):
            yield chunk
    finally:
        if path:
            source.close()


def load(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("load", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")
    p.add_argument("--platform", help="Load only the given platform variant")
    opts = p.parse_args(args)
    if not opts.input and sys.stdin.isatty():
        raise StatusError("requested load from stdin, but stdin is empty", 1)
    if opts.input:
        try:
            open(opts.input, "rb").close()
        except OSError as exc:
            raise StatusError(f"open {opts.input}: {exc.strerror or exc}", 1) from exc
    stream = ctx.client.stream("POST", "/images/load", {"quiet": opts.quiet or None, "platform": opts.platform},
                               body=_read_chunks(opts.input), content_type="application/x-tar")
    try:
        for message in stream.json_lines():
            if message.get("error"):
                raise StatusError(f"Error response from daemon: {message['error']}", 1)
            text = message.get("stream") or ""
            if text:  # -q only silences progress: "Loaded image: ..." still prints, as in docker
                ctx.out.write(text)
    finally:
        stream.close()
    return 0


def image_inspect(ctx: CLIContext, args: list[str]) -> int:
    from engine.cli.commands.inspect import inspect_objects

    return inspect_objects(ctx, "image inspect", args, fixed_type="image")


def import_(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("import", "Import the contents from a tarball to create a filesystem image")
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the "
                                                                         "created image")
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("source", metavar="file|URL|-")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    opts = p.parse_args(args)
    if opts.source != "-" and "://" not in opts.source:
        try:
            open(opts.source, "rb").close()
        except OSError as exc:
            raise StatusError(f"open {opts.source}: {exc.strerror or exc}", 1) from exc
    # A file or stdin is the request body (fromSrc=-); a URL is the engine's to fetch, as docker's client.
    body = None if "://" in opts.source else _read_chunks(None if opts.source == "-" else opts.source)
    query = {"fromSrc": "-" if body is not None else opts.source, "repo": opts.reference or None,
             "message": opts.message or None, "platform": opts.platform, "changes": opts.change or None}
    stream = ctx.client.stream("POST", "/images/create", query, body=body, content_type="application/x-tar")
    try:
        for message in stream.json_lines():
            if message.get("error"):
                raise StatusError(f"Error response from daemon: {message['error']}", 1)
            if message.get("status"):
                ctx.print(str(message["status"]))
    finally:
        stream.close()
    return 0

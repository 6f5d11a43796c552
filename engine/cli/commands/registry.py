"""Registry commands: pull, push, login, logout, search (docker's syntax and output)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from engine.cli.context import CLIContext, StatusError, UsageError

SEARCH_TABLE = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}"
SEARCH_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL",
                  "IsAutomated": "AUTOMATED"}
DESCRIPTION_WIDTH = 45


def split_reference(image: str) -> tuple[str, str | None]:
    """`name[:tag|@digest]` → (name, tag or digest or None), as the API's fromImage/tag take them."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, digest
    name, colon, tag = image.rpartition(":")
    if colon and "/" not in tag:
        return name, tag
    return image, None


def _tty(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _columns(out: TextIO) -> int:
    """The terminal's width; docker assumes 200 when it cannot tell."""
    import os

    try:
        return os.get_terminal_size(out.fileno()).columns or 200
    except (OSError, ValueError, AttributeError):
        return 200


def _stream_progress(ctx: CLIContext, method: str, path: str, query: dict[str, Any], image: str,
                     quiet: bool, out: TextIO | None = None) -> None:
    from engine.cli import docker_config
    from engine.cli.progress import display

    stream = ctx.client.stream(method, path, query, headers=docker_config.registry_auth_header(ctx.environ, image))
    try:
        if quiet:
            for message in stream.json_lines():
                if message.get("error"):
                    raise StatusError(str(message["error"]), 1)
        else:
            out = out or ctx.out
            display(stream.json_lines(), out, _tty(out), columns=_columns(out))
    finally:
        stream.close()


def pull(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("pull", "Download an image from a registry")
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    opts = p.parse_args(args)
    from engine.images.errors import InvalidReference
    from engine.images.reference import parse_docker_ref

    _, tag = split_reference(opts.image)
    if opts.all_tags and tag is not None:
        raise UsageError("tag can't be used with --all-tags/-a", exit_code=1)
    try:
        full = parse_docker_ref(opts.image)
    except InvalidReference as exc:
        raise UsageError(f"invalid reference format: {exc}", exit_code=1) from exc
    if tag is None and not opts.quiet and not opts.all_tags:
        ctx.print("Using default tag: latest")
    pull_image(ctx, opts.image, opts.platform, ctx.out, opts.quiet, opts.all_tags)
    ctx.print(full.name if opts.all_tags else str(full))
    return 0


def pull_image(ctx: CLIContext, image: str, platform: str | None, out: TextIO, quiet: bool = False,
               all_tags: bool = False) -> None:
    """POST /images/create with the stored credentials, progress drawn on `out` (`berth run` uses stderr)."""
    name, tag = split_reference(image)
    query = {"fromImage": name, "tag": None if all_tags else tag or "latest", "platform": platform}
    _stream_progress(ctx, "POST", "/images/create", query, image, quiet, out)


def push(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("push", "Upload an image to a registry")
    p.add_argument("-a", "--all-tags", action="store_true", help="Push all tags of an image to the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("image", metavar="NAME[:TAG]")
    opts = p.parse_args(args)
    name, tag = split_reference(opts.image)
    if opts.all_tags and tag is not None:
        raise UsageError("tag can't be used with --all-tags/-a", exit_code=1)
    if tag is not None and tag.startswith("sha256:"):
        raise UsageError("push by digest is not supported: name a tag", exit_code=1)
    if tag is None and not opts.all_tags:
        tag = "latest"
        if not opts.quiet:
            ctx.print("Using default tag: latest")
    _stream_progress(ctx, "POST", f"/images/{name}/push", {"tag": tag}, opts.image, opts.quiet)
    if opts.quiet:
        ctx.print(opts.image)
    return 0


def login(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("login", "Authenticate to a registry")
    p.add_argument("-u", "--username", help="Username")
    p.add_argument("-p", "--password", help="Password")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    p.add_argument("server", nargs="?", metavar="SERVER")
    opts = p.parse_args(args)
    from engine.cli import docker_config

    if opts.password is not None and opts.password_stdin:
        raise UsageError("--password and --password-stdin are mutually exclusive", exit_code=1)
    if opts.password_stdin:
        if not opts.username:
            raise UsageError("Must provide --username with --password-stdin", exit_code=1)
        opts.password = sys.stdin.read().rstrip("\r\n")
    elif opts.password is not None:
        ctx.warn("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    key = docker_config.server_key(opts.server)
    username, password = opts.username, opts.password
    if not username or password is None:
        stored = docker_config.credentials(ctx.environ, key)
        if stored is not None and not username and password is None:
            username, password = stored
        else:
            username, password = _prompt(username, password)
    answer = ctx.client.post("/auth", json={"username": username, "password": password, "serveraddress": key})
    path = docker_config.store(ctx.environ, key, username, password)
    if path is not None:
        ctx.warn(f"WARNING! Your password will be stored unencrypted in {path}.")
    ctx.print(str((answer or {}).get("Status") or "Login Succeeded"))
    return 0


def _prompt(username: str | None, password: str | None) -> tuple[str, str]:
    if not sys.stdin.isatty():
        raise StatusError("Error: Cannot perform an interactive login from a non TTY device", 1)
    import getpass

    if not username:
        username = input("Username: ").strip()
    if not username:
        raise StatusError("Error: Non-null Username Required", 1)
    if password is None:
        password = getpass.getpass("Password: ")
    if not password:
        raise StatusError("Error: Password Required", 1)
    return username, password


def logout(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("logout", "Log out from a registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    opts = p.parse_args(args)
    from engine.cli import docker_config

    key = docker_config.server_key(opts.server)
    if docker_config.remove(ctx.environ, key):
        ctx.print(f"Removing login credentials for {key}")
    else:
        ctx.print(f"Not logged in to {key}")
    return 0


def search(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("search", "Search for images")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", help="Pretty-print search using a Go template")
    p.add_argument("--limit", type=int, default=0, help="Max number of search results")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("term", metavar="TERM")
    opts = p.parse_args(args)
    from engine.cli.formatter import write_list
    from engine.cli.output import parse_filter_flags

    filters = parse_filter_flags(opts.filter)
    results = ctx.client.get("/images/search", {"term": opts.term, "limit": opts.limit or None,
                                                "filters": filters or None})
    rows = []
    for item in results or []:
        description = " ".join(str(item.get("description") or "").split())
        if not opts.no_trunc and len(description) > DESCRIPTION_WIDTH:
            description = description[:DESCRIPTION_WIDTH - 1] + "…"
        rows.append({"Name": str(item.get("name") or ""), "Description": description,
                     "StarCount": str(item.get("star_count") or 0),
                     "IsOfficial": "[OK]" if item.get("is_official") else "",
                     "IsAutomated": "[OK]" if item.get("is_automated") else ""})
    write_list(ctx, opts.format or SEARCH_TABLE, rows, SEARCH_HEADERS)
    return 0

"""`berth ps`, `images`, `version` and `info` at docker's speed: the `berth` launcher's entry point.

A Python CLI starts at ~8 ms (the bare interpreter); argparse (+ re, enum,
gettext, locale), typing, socket, json and pathlib took `berth ps` to ~30 ms
against `docker ps`'s ~10 ms.  This module handles the plain forms of the most
run list commands with none of them: a hand-read argv (only flags that take no
value), the engine socket from BERTH_HOST/DOCKER_HOST or the default context,
one connection, one unversioned `GET` (the engine answers in its own API
version and says which in `Api-Version`: when that is newer than ours, the full
path's negotiation would differ, so it takes over), json's C scanner, and the
same row and table code as the full path (engine/cli/rows.py, tabwriter.py).

Anything else — another command, an unknown or value-taking flag, --help,
-H/--context, a named context, tcp://, an error status, a refused connection —
runs engine.cli.main from the start, so every message and exit status is the
full path's own.  Only `GET`s are done here, so redoing one is harmless.
tests/cli/test_fast_path.py runs both paths on the same arguments and compares.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's (~2 ms of start-up); mypy reads the name the same way
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

API_VERSION = (1, 51)  # engine.client.protocol.CLIENT_API_VERSION; tests/cli/test_fast_path.py checks they agree
USER_AGENT = "Berth-Client/0.1"
# command -> (short flags, long flags) it handles; each takes no value.
FLAGS = {
    "ps": ("aqsl", ("--all", "--quiet", "--size", "--latest", "--no-trunc")),
    "images": ("aq", ("--all", "--quiet", "--no-trunc", "--digests")),
    "version": ("", ()),
    "info": ("", ()),
}
ALIASES = {("container", "ls"): "ps", ("container", "list"): "ps", ("container", "ps"): "ps",
           ("image", "ls"): "images", ("image", "list"): "images", ("system", "info"): "info"}


class Unhandled(Exception):
    """Not a case for this path: engine.cli.main runs the command instead."""


def main() -> int:
    argv = sys.argv[1:]
    try:
        printed = run(argv, os.environ)
    except KeyboardInterrupt:
        return 130
    except Exception:  # Unhandled, a refused connection, a bad body: the full path says it its way
        printed = None
    if printed is None:
        from engine.cli.main import main as full_main

        return full_main(argv)
    try:
        sys.stdout.write(printed[0])
        sys.stdout.flush()
        sys.stderr.write(printed[1])
    except BrokenPipeError:  # `berth ps | head`: as engine.cli.main.main does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def run(argv: list[str], environ: Mapping[str, str]) -> tuple[str, str] | None:
    """What the command prints (stdout, stderr), or None when this path does not handle it (or raises)."""
    if not argv:
        return None
    command = ALIASES.get((argv[0], argv[1]), "") if len(argv) > 1 else ""
    args = argv[2:] if command else argv[1:]
    command = command or argv[0]
    if command not in FLAGS:
        return None
    flags = parse_flags(command, args)
    socket_path = engine_socket(environ)
    if flags is None or socket_path is None:
        return None
    if command == "ps":
        return _ps(flags, socket_path), ""
    if command == "images":
        return _images(flags, socket_path), ""
    if command == "info":
        from engine.cli.system_text import info_text

        return info_text(get(socket_path, "/info")[0])
    return _version(socket_path), ""


def parse_flags(command: str, args: list[str]) -> set[str] | None:
    """The long names of the flags given, or None for anything this path does not read."""
    shorts, longs = FLAGS[command]
    by_letter = {long[2]: long for long in longs if long[2] in shorts}  # -a -> --all ...
    found = set()
    for arg in args:
        if arg in longs:
            found.add(arg)
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 1 and all(c in shorts for c in arg[1:]):
            found.update(by_letter[c] for c in arg[1:])
        else:
            return None
    return found


def engine_socket(environ: Mapping[str, str]) -> str | None:
    """The unix socket the full path would use (engine/cli/context_store.py's precedence), or None."""
    host = environ.get("BERTH_HOST") or environ.get("DOCKER_HOST")
    if host:
        if host.startswith("/"):
            return host
        path = host[len("unix://"):]
        return path if host.startswith("unix://") and path.startswith("/") and not any(c in path for c in "?#") \
            else None
    if environ.get("BERTH_CONTEXT") or environ.get("DOCKER_CONTEXT"):
        return None
    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    try:
        with open(os.path.join(config_dir, "config.json"), "rb") as f:
            config = parse_json(f.read())
    except FileNotFoundError:
        config = {}
    if not isinstance(config, dict) or config.get("currentContext") not in (None, "", "default"):
        return None
    # engine.paths.default_socket(), without pathlib (tests/cli/test_fast_path.py checks they agree).
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.isdir(runtime_dir):
        return os.path.join(runtime_dir, "berth", "berth.sock")
    return f"/tmp/berth-{os.getuid()}/berth.sock"


class _Decoding:
    """The settings json.JSONDecoder hands its C scanner (json's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity, as json's own table maps them


def parse_json(data: bytes) -> Any:
    """json.loads for a UTF-8 body with the C scanner alone: the json package imports re (and enum)."""
    import _json

    text = data.decode("utf-8").strip(" \t\n\r")
    value, end = _json.make_scanner(_Decoding())(text, 0)  # type: ignore[arg-type]  # reads these attributes
    if end != len(text):
        raise Unhandled("extra data after the JSON value")
    return value


def get(socket_path: str, target: str) -> tuple[Any, str]:
    """One unversioned GET: the decoded 200 body and the engine's API version (what the full path would
    negotiate).  Anything else is Unhandled (the full path reports it)."""
    import _socket

    from engine.client.http1 import ResponseReader, encode_head

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        sock.sendall(encode_head("GET", target, [("Host", "docker"), ("User-Agent", USER_AGENT)]))
        reader = ResponseReader(sock.recv)
        status, headers = reader.read_head()
        major, _, minor = headers.get("api-version", "").partition(".")
        if status != 200 or not (major.isdigit() and minor.isdigit()) or (int(major), int(minor)) > API_VERSION:
            raise Unhandled(f"status {status}, API version {headers.get('api-version')!r}")
        return parse_json(b"".join(reader.body("GET", status, headers))), f"{major}.{minor}"
    finally:
        sock.close()


def _table(template: str, headers: Mapping[str, str], rows: list[dict[str, str]], quiet: bool) -> str:
    """engine.cli.formatter.write_list for a default `table {{.A}}\\t{{.B}}` template or `{{.ID}}` (-q)."""
    from engine.cli.tabwriter import tabwrite

    if quiet:
        lines = [row["ID"] for row in rows]
    else:
        fields = [cell.strip().removeprefix("{{.").removesuffix("}}") for cell in
                  template.removeprefix("table").strip(" ").split("\t")]
        lines = ["\t".join(headers.get(field, field.upper()) for field in fields)]
        lines += ["\t".join(row[field] for field in fields) for row in rows]
        lines = tabwrite("\n".join(lines).split("\n"))
    return "".join(line + "\n" for line in lines)


def _ps(flags: set[str], socket_path: str) -> str:
    from engine.cli.rows import CONTAINER_HEADERS, PS_TABLE, container_row

    latest = "--latest" in flags
    query = [q for q, on in (("all=1", "--all" in flags or latest), ("limit=1", latest),
                             ("size=1", "--size" in flags)) if on]
    entries, _ = get(socket_path, "/containers/json" + ("?" + "&".join(query) if query else ""))
    rows = [container_row(entry, trunc="--no-trunc" not in flags) for entry in entries]
    template = PS_TABLE + ("\t{{.Size}}" if "--size" in flags else "")
    return _table(template, CONTAINER_HEADERS, rows, "--quiet" in flags)


def _images(flags: set[str], socket_path: str) -> str:
    from engine.cli.rows import IMAGE_HEADERS, IMAGES_TABLE, image_rows

    entries, _ = get(socket_path, "/images/json" + ("?all=1" if "--all" in flags else ""))
    rows = [row for entry in entries for row in image_rows(entry, trunc="--no-trunc" not in flags)]
    template = IMAGES_TABLE.replace("{{.ID}}", "{{.Digest}}\t{{.ID}}") if "--digests" in flags else IMAGES_TABLE
    return _table(template, IMAGE_HEADERS, rows, "--quiet" in flags)


def _version(socket_path: str) -> str:
    from engine.cli.system_text import version_text

    server, negotiated = get(socket_path, "/version")
    return version_text(server, negotiated, ".".join(map(str, API_VERSION)), f"unix://{socket_path}")

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
# command -> (flags that take no value, flags that take one: short (or long) -> long name,
#             the number of positional arguments allowed (least, most)).
FLAGS: dict[str, tuple[dict[str, str], dict[str, str], tuple[int, int]]] = {
    "ps": ({"-a": "--all", "-q": "--quiet", "-s": "--size", "-l": "--latest", "--no-trunc": "--no-trunc"},
           {"-n": "--last", "-f": "--filter", "--format": "--format"}, (0, 0)),
    "images": ({"-a": "--all", "-q": "--quiet", "--no-trunc": "--no-trunc", "--digests": "--digests"},
               {"-f": "--filter", "--format": "--format"}, (0, 1)),
    "version": ({}, {}, (0, 0)),
    "info": ({}, {}, (0, 0)),
    "inspect": ({}, {"-f": "--format"}, (1, 1 << 16)),
    "container inspect": ({}, {"-f": "--format"}, (1, 1 << 16)),
    "image inspect": ({}, {"-f": "--format"}, (1, 1 << 16)),
    "logs": ({"-t": "--timestamps", "--details": "--details"}, {"-n": "--tail"}, (1, 1)),
}
ALIASES = {("container", "ls"): "ps", ("container", "list"): "ps", ("container", "ps"): "ps",
           ("image", "ls"): "images", ("image", "list"): "images", ("system", "info"): "info",
           ("container", "inspect"): "container inspect", ("image", "inspect"): "image inspect",
           ("container", "logs"): "logs"}
# What each inspect looks up, in the full path's order (engine/cli/commands/inspect.py): the first found wins.
INSPECTED = {"inspect": ("/containers/{}/json", "/images/{}/json"), "container inspect": ("/containers/{}/json",),
             "image inspect": ("/images/{}/json",)}
# Names that reach the URL as they are (the full path percent-encodes anything else).
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
REFERENCE_CHARS = NAME_CHARS | frozenset(":/@")  # image references: kept as they are in the URL too

class Unhandled(Exception):
    """Not a case for this path: engine.cli.main runs the command instead."""


class Missing(Unhandled):
    """A 404: an inspect may look for the name as another kind of object."""


class Streamed(Exception):
    """Failed after output was written: redoing the command would print it twice."""


def main() -> int:
    argv = sys.argv[1:]
    if argv == ["system", "dial-stdio"]:  # what an ssh:// client starts on this host for every connection
        code = dial_stdio(os.environ)
        if code is not None:
            return code
    try:
        printed = run(argv, os.environ)
    except KeyboardInterrupt:
        return 130
    except Streamed as exc:
        sys.stderr.write(f"berth: {exc}\n")
        return 1
    except BrokenPipeError:  # `berth logs x | head` left while the logs streamed: quietly, as below
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
    parsed = parse_flags(command, args)
    socket_path = engine_socket(environ)
    if parsed is None or socket_path is None:
        return None
    flags, names = parsed
    if command == "ps":
        return _ps(flags, socket_path), ""
    if command == "images":
        return _images(flags, names, socket_path), ""
    if command in INSPECTED:
        return _inspect(flags, names, socket_path, INSPECTED[command]), ""
    if command == "logs":
        return _logs(flags, names[0], socket_path)
    if names or flags:
        return None
    if command == "info":
        from engine.cli.system_text import info_text

        return info_text(get(socket_path, "/info")[0])
    return _version(socket_path), ""


def dial_stdio(environ: Mapping[str, str]) -> int | None:
    """`berth system dial-stdio` to a unix-socket engine; None (the full path) for anything else or an error."""
    socket_path = engine_socket(environ)
    if socket_path is None:
        return None
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError:
        sock.close()
        return None  # the full path says why, its way
    from engine.cli.stdio_relay import relay

    return relay(sock)


def parse_flags(command: str, args: list[str]) -> tuple[dict[str, list[str]], list[str]] | None:
    """The flags given (long name -> values, "" for a flag without one) and the positional arguments,
    or None for anything this path does not read the way argparse would."""
    bools, valued, (least, most) = FLAGS[command]
    found: dict[str, list[str]] = {}
    names: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if not eq and name in bools.values():
                found.setdefault(name, []).append("")
                continue
            if name not in valued.values():
                return None  # unknown, `--`, or `--all=true`
            if not eq:
                value = next(rest, "-")
                if value.startswith("-"):
                    return None
            found.setdefault(name, []).append(value)
        elif arg.startswith("-") and len(arg) > 1:
            for n, letter in enumerate(arg[1:], 2):  # `-aq`, `-af status=exited`: only the last takes a value
                if "-" + letter in bools:
                    found.setdefault(bools["-" + letter], []).append("")
                    continue
                value = next(rest, "-") if "-" + letter in valued and n == len(arg) else "-"
                if value.startswith("-"):
                    return None
                found.setdefault(valued["-" + letter], []).append(value)
        else:
            names.append(arg)
    allowed = REFERENCE_CHARS if command in INSPECTED else NAME_CHARS
    if not least <= len(names) <= most or any(set(name) - allowed for name in names if command != "images"):
        return None
    return found, names


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
        version = headers.get("api-version", "")
        if status != 200 or not _version_ok(version):
            raise (Missing if status == 404 else Unhandled)(f"status {status}, API version {version!r}")
        return parse_json(b"".join(reader.body("GET", status, headers))), version
    finally:
        sock.close()


def _query(pairs: list[tuple[str, str]]) -> str:
    """`?k=v&...` percent-encoded like urllib's urlencode (urllib.parse imports re)."""
    safe = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~")

    def quote(text: str) -> str:
        return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode())

    return "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs) if pairs else ""


def _filters(flags: Mapping[str, list[str]], extra: Mapping[str, list[str]] | None = None) -> list[tuple[str, str]]:
    from engine.cli.gojson import dumps
    from engine.cli.listing import parse_filter_flags

    filters = parse_filter_flags(flags.get("--filter", []))  # a bad one raises: the full path words it
    for key, values in (extra or {}).items():
        filters.setdefault(key, []).extend(values)
    return [("filters", dumps(filters))] if filters else []


def _list(flags: Mapping[str, list[str]], default: str, headers: Mapping[str, str], rows: list[dict[str, str]],
          errors: tuple[str, str, str]) -> str:
    """engine.cli.formatter.write_list: -q, --format, or the default table (a template error raises)."""
    from engine.cli.formatter import render

    fmt = "{{.ID}}" if "--quiet" in flags else flags.get("--format", [""])[-1] or default
    return "".join(line + "\n" for line in render(fmt, rows, headers, errors))


def _ps(flags: Mapping[str, list[str]], socket_path: str) -> str:
    from engine.cli.rows import CONTAINER_HEADERS, PS_TABLE, container_row

    last = flags.get("--last", ["-1"])[-1]
    if not (last.isdecimal() or last == "-1"):
        raise Unhandled("--last is not a plain number")
    limit = 1 if "--latest" in flags else int(last)
    query = [(q, "1") for q, on in (("all", "--all" in flags or limit > 0), ("size", "--size" in flags)) if on]
    query += [("limit", str(limit))] if limit > 0 else []
    entries, _ = get(socket_path, "/containers/json" + _query(query + _filters(flags)))
    rows = [container_row(entry, trunc="--no-trunc" not in flags) for entry in entries]
    from engine.cli.formatter import PS_ERRORS

    return _list(flags, PS_TABLE + ("\t{{.Size}}" if "--size" in flags else ""), CONTAINER_HEADERS, rows, PS_ERRORS)


def _images(flags: Mapping[str, list[str]], names: list[str], socket_path: str) -> str:
    from engine.cli.rows import IMAGE_HEADERS, IMAGES_TABLE, image_rows

    query = [("all", "1")] if "--all" in flags else []
    query += _filters(flags, {"reference": names} if names else None)
    entries, _ = get(socket_path, "/images/json" + _query(query))
    rows = [row for entry in entries for row in image_rows(entry, trunc="--no-trunc" not in flags)]
    template = IMAGES_TABLE.replace("{{.ID}}", "{{.Digest}}\t{{.ID}}") if "--digests" in flags else IMAGES_TABLE
    from engine.cli.formatter import IMAGES_ERRORS

    return _list(flags, template, IMAGE_HEADERS, rows, IMAGES_ERRORS)


def _inspect(flags: Mapping[str, list[str]], names: list[str], socket_path: str, paths: tuple[str, ...]) -> str:
    """engine.cli.objects.print_inspected for objects that all exist as one of `paths`' kinds (anything else,
    a name found as none of them included, is the full path's)."""
    from engine.cli.gojson import dumps, go_json

    def find(name: str) -> Any:
        for path in paths[:-1]:
            try:
                return get(socket_path, path.format(name))[0]
            except Missing:
                continue
        return get(socket_path, paths[-1].format(name))[0]

    found = [find(name) for name in names]
    fmt = flags.get("--format", [""])[-1]
    if not fmt:
        return go_json(dumps(found, indent=4, ensure_ascii=False)) + "\n"
    if fmt == "json":
        return go_json(dumps(found)) + "\n"
    from engine.cli.gotemplate import Template

    template = Template(fmt, missing_key_error=True)  # a template error raises: the full path words it
    return "".join(template.render(item) + "\n" for item in found)


def _logs(flags: Mapping[str, list[str]], name: str, socket_path: str) -> tuple[str, str]:
    """engine.cli.commands.containers.logs without --follow/--since/--until: the frames, as they arrive."""
    import _socket

    from engine.client.http1 import ResponseReader, encode_head
    from engine.stdcopy import STDERR, FrameDecoder

    query = [("stdout", "1"), ("stderr", "1"), ("tail", flags.get("--tail", ["all"])[-1])]
    query += [(key, "1") for key, flag in (("timestamps", "--timestamps"), ("details", "--details")) if flag in flags]
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
        sock.sendall(encode_head("GET", f"/containers/{name}/logs" + _query(query),
                                 [("Host", "docker"), ("User-Agent", USER_AGENT)]))
        reader = ResponseReader(sock.recv)
        status, headers = reader.read_head()
        if status != 200 or not _version_ok(headers.get("api-version", "")):
            raise Unhandled(f"status {status}")
        framed = headers.get("content-type") != "application/vnd.docker.raw-stream"
        decoder = FrameDecoder()
        out, err = sys.stdout.buffer, sys.stderr.buffer
        written = False
        try:
            for chunk in reader.body("GET", status, headers):
                for channel, payload in decoder.feed(chunk) if framed else [(1, chunk)]:
                    target = err if channel == STDERR else out
                    target.write(payload)
                    target.flush()
                    written = True
        except BrokenPipeError:
            raise  # our reader left: main() ends quietly
        except Exception as exc:  # a broken stream (reset, bad chunking...): say so once, never print it again
            if written:
                raise Streamed(f"error reading the logs: {exc}") from exc
            raise
    finally:
        sock.close()
    return "", ""


def _version_ok(version: str) -> bool:
    """An `Api-Version` the full path would negotiate down to (ours or older), as major.minor."""
    major, dot, minor = version.partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit() and (int(major), int(minor)) <= API_VERSION


def _version(socket_path: str) -> str:
    from engine.cli.system_text import version_text

    server, negotiated = get(socket_path, "/version")
    return version_text(server, negotiated, ".".join(map(str, API_VERSION)), f"unix://{socket_path}")

"""`berth context ls|create|use|rm|inspect|show|export|import|update` over the docker CLI's context store
(engine/cli/context_store.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, cast

from engine.cli.context import CLIContext, StatusError, UsageError
from engine.cli.context_store import DEFAULT, IMPORT_LIMIT, ContextError, ContextStore, check_name, default_host

CONTEXT_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT",
                   "Error": "ERROR", "Current": ""}  # docker: no header for the `*`
CONTEXT_TABLE = "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"
DEFAULT_DESCRIPTION = "Current DOCKER_HOST based configuration"
_DOCKER_KEYS = ("from", "host", "ca", "cert", "key", "skip-tls-verify")


def _store(ctx: CLIContext) -> ContextStore:
    return ContextStore(ctx.environ)


def _fail(exc: ContextError) -> StatusError:
    return StatusError(str(exc), 1)


def ls(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context ls", "List contexts")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show context names")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    opts = p.parse_args(args)
    from engine.cli.formatter import write_list

    store = _store(ctx)
    try:
        current = store.selected(ctx.options.context)
        rows: list[dict[str, Any]] = [{"Name": DEFAULT, "Description": DEFAULT_DESCRIPTION,
                                       "DockerEndpoint": default_host(ctx.environ), "Error": "",
                                       "Current": current == DEFAULT}]
        for name in store.names():
            meta = store.get(name)
            rows.append({"Name": name, "Description": str((meta.get("Metadata") or {}).get("Description") or ""),
                         "DockerEndpoint": store.host(name), "Error": "", "Current": current == name})
    except ContextError as exc:
        raise _fail(exc) from exc
    rows.sort(key=lambda row: str(row["Name"]))  # docker lists `default` among the others, by name
    fmt = "{{.Name}}" if opts.quiet else opts.format or CONTEXT_TABLE
    write_list(ctx, fmt, cast(list[dict[str, str]], rows), CONTEXT_HEADERS)
    if not ctx.options.context and (ctx.environ.get("BERTH_HOST") or ctx.environ.get("DOCKER_HOST")):
        ctx.warn("Warning: DOCKER_HOST environment variable overrides the active context. "
                 "To use a context, either set the global --context flag, or unset DOCKER_HOST environment variable.")
    return 0


def _docker_endpoint(value: str) -> dict[str, str]:
    """`--docker host=tcp://...,ca=...,cert=...,key=...,skip-tls-verify=true` (docker's csv syntax)."""
    fields: dict[str, str] = {}
    for item in value.split(","):
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in _DOCKER_KEYS:
            raise UsageError(f"unable to create docker endpoint config: unrecognized config key: {key}", exit_code=1)
        fields[key] = val
    return fields


def _endpoint(ctx: CLIContext, store: ContextStore, docker: str, from_: str | None) -> tuple[str, bool, dict[str, str]]:
    """The docker endpoint (host, skip-tls-verify, TLS files) that `--docker` / `--from` describe."""
    endpoint = _docker_endpoint(docker) if docker else {}
    source = endpoint.get("from") or (from_ if not docker else None)
    if source:
        host = default_host(ctx.environ) if source == DEFAULT else store.host(source)
        tls = {} if source == DEFAULT else store.tls_material(source)
        skip = False if source == DEFAULT else bool(
            ((store.get(source).get("Endpoints") or {}).get("docker") or {}).get("SkipTLSVerify"))
        return host, skip, tls
    host = endpoint.get("host") or default_host(ctx.environ)
    tls = {kind: os.path.expanduser(endpoint[kind]) for kind in ("ca", "cert", "key") if endpoint.get(kind)}
    for kind, path in tls.items():
        if not os.path.isfile(path):
            raise StatusError(f"unable to create docker endpoint config: {kind}: no such file: {path}", 1)
    from engine.client.errors import ClientError
    from engine.client.hosts import parse_host

    try:
        parse_host(host)
    except ClientError as exc:
        raise StatusError(f"unable to create docker endpoint config: {exc}", 1) from exc
    return host, endpoint.get("skip-tls-verify", "false").lower() in ("1", "true"), tls


def create(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context create", "Create a context")
    p.add_argument("--description", default="", help="Description of the context")
    p.add_argument("--docker", default="", help="set the docker endpoint (host=, ca=, cert=, key=, skip-tls-verify=)")
    p.add_argument("--from", dest="from_", help="create context from a named context")
    p.add_argument("name", metavar="CONTEXT")
    opts = p.parse_args(args)
    store = _store(ctx)
    try:
        host, skip, tls = _endpoint(ctx, store, opts.docker, opts.from_)
        store.create(opts.name, opts.description, host, skip, tls)
    except ContextError as exc:
        raise _fail(exc) from exc
    ctx.print(opts.name)
    ctx.warn(f'Successfully created context "{opts.name}"')
    return 0


def update(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context update", "Update a context")
    p.add_argument("--description", help="Description of the context")
    p.add_argument("--docker", default="", help="set the docker endpoint (from=, host=, ca=, cert=, key=, "
                                                "skip-tls-verify=)")
    p.add_argument("name", metavar="CONTEXT")
    opts = p.parse_args(args)
    store = _store(ctx)
    try:
        if opts.name == DEFAULT:
            raise ContextError('"default" is a reserved context name')
        store.get(opts.name)
        endpoint, tls = None, None
        if opts.docker:
            # docker replaces the whole endpoint: TLS files not named again are dropped.
            host, skip, files = _endpoint(ctx, store, opts.docker, None)
            endpoint = {"Host": host, "SkipTLSVerify": skip}
            tls = {kind: Path(path).read_bytes() for kind, path in files.items()}
        store.update(opts.name, opts.description, endpoint, tls)
    except ContextError as exc:
        raise _fail(exc) from exc
    ctx.print(opts.name)
    ctx.warn(f'Successfully updated context "{opts.name}"')
    return 0


def export(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context export", "Export a context to a tar archive FILE or a tar stream on STDOUT.")
    p.add_argument("name", metavar="CONTEXT")
    p.add_argument("file", nargs="?", metavar="FILE|-")
    opts = p.parse_args(args)
    store = _store(ctx)
    default_meta = {"Name": DEFAULT, "Metadata": {}, "Endpoints": {
        "docker": {"Host": default_host(ctx.environ), "SkipTLSVerify": False}}}
    try:
        data = store.export(opts.name, default_meta)
    except ContextError as exc:
        raise _fail(exc) from exc
    if opts.file == "-":
        if sys.stdout.isatty():
            raise StatusError("cowardly refusing to export to a terminal, specify a file path", 1)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    target = opts.file or f"{opts.name}.dockercontext"
    try:
        with open(target, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise StatusError(f"open {target}: {exc.strerror or exc}", 1) from exc
    ctx.warn(f'Written file "{target}"')
    return 0


def import_(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context import", "Import a context from a tar or zip file")
    p.add_argument("name", metavar="CONTEXT")
    p.add_argument("file", metavar="FILE|-")
    opts = p.parse_args(args)
    store = _store(ctx)
    try:
        check_name(opts.name)
        if opts.file == "-":
            data = sys.stdin.buffer.read(IMPORT_LIMIT + 1)
        else:
            with open(opts.file, "rb") as source:
                data = source.read(IMPORT_LIMIT + 1)
        store.import_(opts.name, data)
    except OSError as exc:
        raise StatusError(f"open {opts.file}: {exc.strerror or exc}", 1) from exc
    except ContextError as exc:
        raise _fail(exc) from exc
    ctx.print(opts.name)
    ctx.warn(f'Successfully imported context "{opts.name}"')
    return 0


def use(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context use", "Set the current context")
    p.add_argument("name", metavar="CONTEXT")
    opts = p.parse_args(args)
    store = _store(ctx)
    try:
        if opts.name != DEFAULT:
            store.get(opts.name)  # also refuses a name docker would not accept (it cannot exist)
        store.set_current(opts.name)
    except ContextError as exc:
        raise _fail(exc) from exc
    ctx.print(opts.name)
    ctx.warn(f'Current context is now "{opts.name}"')
    if opts.name != DEFAULT and (ctx.environ.get("BERTH_HOST") or ctx.environ.get("DOCKER_HOST")):
        ctx.warn("Warning: DOCKER_HOST environment variable overrides the active context. "
                 f'To use "{opts.name}", either set the global --context flag, '
                 "or unset DOCKER_HOST environment variable.")
    return 0


def rm(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context rm", "Remove one or more contexts")
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a context in use")
    p.add_argument("names", nargs="+", metavar="CONTEXT")
    opts = p.parse_args(args)
    store = _store(ctx)
    errors = []
    for name in opts.names:
        try:
            if name == store.current() and name != DEFAULT:
                if not opts.force:
                    raise ContextError(f'context "{name}" is in use, set -f flag to force remove')
                store.set_current(DEFAULT)
            store.remove(name)
        except ContextError as exc:
            errors.append(str(exc))  # docker 28 words each failure alone
            continue
        ctx.print(name)
    if errors:
        raise StatusError("\n".join(errors), 1)
    return 0


def inspect(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context inspect", "Display detailed information on one or more contexts")
    p.add_argument("-f", "--format", help="Format output using a Go template or 'json'")
    p.add_argument("names", nargs="*", metavar="CONTEXT")
    opts = p.parse_args(args)
    from engine.cli.objects import print_inspected

    store = _store(ctx)
    found = []
    try:  # docker prints what it found before the first missing one (`[]` if none), then the error
        for name in opts.names or [store.selected(ctx.options.context)]:
            if name == DEFAULT:
                meta: dict[str, Any] = {"Name": DEFAULT, "Metadata": {}, "Endpoints": {
                    "docker": {"Host": default_host(ctx.environ), "SkipTLSVerify": False}}}
                storage = {"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"}
            else:
                meta = store.get(name)
                storage = {"MetadataPath": str(store.meta_path(name).parent),
                           "TLSPath": str(store.tls_dir(name).parent)}
            tls = {"docker": sorted(f"{kind}.pem" for kind in store.tls_material(name))} if name != DEFAULT else {}
            found.append(dict(meta, TLSMaterial=tls if tls.get("docker") else {}, Storage=storage))
    except ContextError as exc:
        print_inspected(ctx, found, opts.format)
        raise _fail(exc) from exc
    print_inspected(ctx, found, opts.format)
    return 0


def show(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context show", "Print the name of the current context")
    p.parse_args(args)
    try:
        ctx.print(_store(ctx).selected(ctx.options.context))
    except ContextError as exc:
        raise _fail(exc) from exc
    return 0

"""`berth context ls|create|use|rm|inspect|show` over the docker CLI's context store (engine/cli/context_store.py)."""

from __future__ import annotations

import os
from typing import Any, cast

from engine.cli.context import CLIContext, StatusError, UsageError
from engine.cli.context_store import DEFAULT, ContextError, ContextStore, default_host

CONTEXT_HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT",
                   "Error": "ERROR", "Current": ""}  # docker: no header for the `*`
CONTEXT_TABLE = "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"
DEFAULT_DESCRIPTION = "Current DOCKER_HOST based configuration"
_DOCKER_KEYS = ("host", "ca", "cert", "key", "skip-tls-verify")


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


def create(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("context create", "Create a context")
    p.add_argument("--description", default="", help="Description of the context")
    p.add_argument("--docker", default="", help="set the docker endpoint (host=, ca=, cert=, key=, skip-tls-verify=)")
    p.add_argument("--from", dest="from_", help="create context from a named context")
    p.add_argument("name", metavar="CONTEXT")
    opts = p.parse_args(args)
    store = _store(ctx)
    try:
        if opts.from_ and not opts.docker:
            source = opts.from_
            host = default_host(ctx.environ) if source == DEFAULT else store.host(source)
            tls = {} if source == DEFAULT else store.tls_material(source)
            skip = False if source == DEFAULT else bool(
                ((store.get(source).get("Endpoints") or {}).get("docker") or {}).get("SkipTLSVerify"))
        else:
            endpoint = _docker_endpoint(opts.docker) if opts.docker else {}
            host = endpoint.get("host") or default_host(ctx.environ)
            tls = {kind: os.path.expanduser(endpoint[kind]) for kind in ("ca", "cert", "key") if endpoint.get(kind)}
            for kind, path in tls.items():
                if not os.path.isfile(path):
                    raise StatusError(f"unable to create docker endpoint config: {kind}: no such file: {path}", 1)
            skip = endpoint.get("skip-tls-verify", "false").lower() in ("1", "true")
        from engine.client.errors import ClientError
        from engine.client.hosts import parse_host

        try:
            parse_host(host)
        except ClientError as exc:
            raise StatusError(f"unable to create docker endpoint config: {exc}", 1) from exc
        store.create(opts.name, opts.description, host, skip, tls)
    except ContextError as exc:
        raise _fail(exc) from exc
    ctx.print(opts.name)
    ctx.warn(f'Successfully created context "{opts.name}"')
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
            errors.append(f"failed to remove context {name}: {exc}")
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
    try:
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

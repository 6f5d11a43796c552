"""`berth run` (and the create half that `berth create` shares): create, maybe pull, attach, start, wait."""

from __future__ import annotations

import argparse
import os
import sys

from engine.cli.container_options import CreateRequest, add_flags, build
from engine.cli.context import CLIContext, StatusError, UsageError

EXIT_DAEMON = 125  # docker run's status for its own failures (create, pull, usage)


def parse_run_args(ctx: CLIContext, command: str, description: str,
                   args: list[str]) -> tuple[argparse.Namespace, CreateRequest]:
    from engine.cli.context import ArgumentParser

    # docker uses -h for --hostname; help stays reachable as --help.
    p = ArgumentParser(prog=f"berth {command}", description=description, add_help=False)
    p.add_argument("--help", action="help", help="Print usage")
    add_flags(p)
    p.add_argument("--pull", default="missing", choices=("always", "missing", "never"),
                   help='Pull image before running ("always", "missing", "never")')
    if command == "run":
        p.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
        p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
        p.add_argument("-a", "--attach", action="append", default=[], help="Attach to STDIN, STDOUT or STDERR")
    flags, rest = p.split_positionals(args)
    opts = p.parse_args(flags)
    if not rest:
        raise UsageError(f"'berth {command}' requires at least 1 argument. See 'berth {command} --help'.",
                         exit_code=1)
    return opts, build(opts, rest[0], rest[1:], ctx.environ)


def _pull(ctx: CLIContext, image: str, platform: str | None) -> None:
    """Pull as `docker run` does: progress on stderr (bars on a terminal), errors with exit status 125."""
    from engine.cli.commands.registry import pull_image
    from engine.client.errors import APIError

    try:
        pull_image(ctx, image, platform, ctx.err)
    except APIError as exc:
        raise StatusError(str(exc), EXIT_DAEMON) from exc
    except StatusError as exc:
        raise StatusError(f"Error response from daemon: {exc}", EXIT_DAEMON) from exc


def _with_tag(image: str) -> str:
    """docker names the reference it looked for with its tag: `busybox` → `busybox:latest`."""
    if "@" in image or ":" in image.rpartition("/")[2]:
        return image
    return f"{image}:latest"


def create_container(ctx: CLIContext, request: CreateRequest, pull: str = "missing",
                     cidfile: str | None = None) -> str:
    """POST /containers/create; a missing image is pulled first (docker's "Unable to find image").
    `--cidfile`: refused when the file exists, the container's id written there once created."""
    from engine.client.errors import APIError, NotFound

    if cidfile and os.path.exists(cidfile):
        raise StatusError(f"container ID file found, make sure the other container isn't running or delete "
                          f"{cidfile}", 1)  # docker: a plain error (exit 1), before anything is created

    if pull == "always":
        _pull(ctx, request.image, request.platform)
    try:
        try:
            created = ctx.client.post("/containers/create", request.query, json=request.body)
        except NotFound as exc:
            if pull == "never" or "image" not in exc.message.lower():
                raise
            ctx.warn(f"Unable to find image '{_with_tag(request.image)}' locally")
            _pull(ctx, request.image, request.platform)
            created = ctx.client.post("/containers/create", request.query, json=request.body)
    except APIError as exc:
        raise StatusError(str(exc), EXIT_DAEMON) from exc
    for warning in created.get("Warnings") or []:
        ctx.warn(f"WARNING: {warning}")
    if cidfile:
        try:
            with open(cidfile, "x") as out:
                out.write(str(created["Id"]))
        except OSError as exc:
            raise StatusError(f"failed to write the container ID to the file: {exc}", EXIT_DAEMON) from exc
    return str(created["Id"])


def run(ctx: CLIContext, args: list[str]) -> int:
    opts, request = parse_run_args(ctx, "run", "Create and run a new container from an image", args)
    from engine.cli.attach_session import DEFAULT_DETACH_KEYS, attach_and_start, parse_detach_keys

    streams = {s.lower() for s in opts.attach}
    if opts.interactive and opts.tty and not os.isatty(0) and not opts.detach:
        raise StatusError("the input device is not a TTY", 1)
    attach_stdin = not opts.detach and (opts.interactive or "stdin" in streams)
    body = request.body
    body["AttachStdin"] = body["StdinOnce"] = attach_stdin
    if opts.detach:
        body["AttachStdout"] = body["AttachStderr"] = False
    elif streams:
        body["AttachStdout"], body["AttachStderr"] = "stdout" in streams, "stderr" in streams
    keys = parse_detach_keys(opts.detach_keys) if opts.detach_keys else DEFAULT_DETACH_KEYS
    container_id = create_container(ctx, request, opts.pull, opts.cidfile)
    if opts.detach:
        from engine.cli.attach_session import start_error_status
        from engine.client.errors import APIError

        try:
            ctx.client.post(f"/containers/{container_id}/start")
        except APIError as exc:
            raise StatusError(str(exc), start_error_status(exc.message)) from exc
        ctx.print(container_id)
        return 0
    sys.stdout.flush()
    return attach_and_start(ctx.client, container_id, tty=opts.tty, stdin=attach_stdin,
                            auto_remove=opts.rm, start=True, detach_keys=keys)

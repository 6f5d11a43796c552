"""`berth exec`: run a command in a running container (docker's cli/command/container/exec.go).

The order is docker's: POST /containers/{id}/exec, then either a detached
POST /exec/{id}/start, or a hijacked one pumped by the same session code as
`attach` (raw terminal, ctrl-p ctrl-q, SIGWINCH → POST /exec/{id}/resize);
the exit status is read back from GET /exec/{id}/json.
"""

from __future__ import annotations

import os
import sys

from engine.cli.context import CLIContext, StatusError, UsageError


def exec_(ctx: CLIContext, args: list[str]) -> int:
    from engine.cli.context import ArgumentParser

    p = ArgumentParser(prog="berth exec", description="Execute a command in a running container")
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="Read in a file of environment variables")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to the command")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-u", "--user", help="Username or UID (format: \"<name|uid>[:<group|gid>]\")")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    flags, rest = p.split_positionals(args)
    opts = p.parse_args(flags)
    if len(rest) < 2:
        raise UsageError("'berth exec' requires at least 2 arguments. See 'berth exec --help'.", exit_code=1)
    container, command = rest[0], rest[1:]
    from engine.cli.attach_session import DEFAULT_DETACH_KEYS, parse_detach_keys, run_session
    from engine.cli.container_options import env_entries
    from engine.client.errors import APIError

    keys = parse_detach_keys(opts.detach_keys) if opts.detach_keys else DEFAULT_DETACH_KEYS
    if opts.interactive and opts.tty and not opts.detach and not os.isatty(0):
        raise StatusError("the input device is not a TTY", 1)
    attach = not opts.detach
    config = {
        "User": opts.user or "", "Privileged": opts.privileged, "Tty": opts.tty,
        "AttachStdin": attach and opts.interactive, "AttachStdout": attach, "AttachStderr": attach,
        "DetachKeys": opts.detach_keys or "", "Env": env_entries(opts.env_file, opts.env, ctx.environ) or None,
        "WorkingDir": opts.workdir or "", "Cmd": command,
    }
    try:
        exec_id = str(ctx.client.post(f"/containers/{container}/exec", json=config)["Id"])
        if opts.detach:
            ctx.client.post(f"/exec/{exec_id}/start", json={"Detach": True, "Tty": opts.tty})
            return 0
        sock = ctx.client.hijack(f"/exec/{exec_id}/start", json={"Detach": False, "Tty": opts.tty})
    except APIError as exc:
        raise StatusError(str(exc), 1) from exc
    try:
        sys.stdout.flush()
        detached = run_session(ctx.client, sock, f"/exec/{exec_id}/resize", tty=opts.tty,
                               stdin=bool(config["AttachStdin"]), detach_keys=keys, kill=None)
    finally:
        sock.close()
    if detached:
        return 0
    status = ctx.client.get(f"/exec/{exec_id}/json")
    code = status.get("ExitCode")
    return int(code) if code is not None else 0

"""`berth build`, `berth commit`, `berth builder prune`: the classic builder's client side.

Like docker/cli's legacy build: the context directory is tarred here, minus
what its .dockerignore excludes (the Dockerfile and .dockerignore always
go), owners set to 0:0, and sent as the body of `POST /build`; the JSON
lines that come back are printed as they arrive.  A Dockerfile outside the
context is added to the tar under a generated name.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from engine.cli.context import CLIContext, StatusError

_CHUNK = 1 << 20


def _context_tar(root: str, dockerfile: str, extra_dockerfile: bytes | None, out: IO[bytes]) -> None:
    from engine.build.dockerignore import ContextFilter

    ignore_path = os.path.join(root, ".dockerignore")
    try:
        with open(ignore_path, encoding="utf-8", errors="replace") as f:
            ignore_text = f.read()
    except FileNotFoundError:
        ignore_text = ""
    context_filter = ContextFilter.from_file_text(ignore_text, dockerfile)

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    import io

    def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in context_filter.walk(root):
            if extra_dockerfile is not None and rel == ".dockerignore":
                continue  # rewritten below
            tar.add(os.path.join(root, rel), arcname=rel, recursive=False, filter=reset)
        if extra_dockerfile is not None:
            # docker/cli AddDockerfileToBuildContext: the daemon drops both once it has read the Dockerfile.
            add_bytes(tar, dockerfile, extra_dockerfile)
            add_bytes(tar, ".dockerignore", f"{ignore_text.rstrip()}\n.dockerignore\n{dockerfile}\n".encode())


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    if handle.seekable():
        handle.seek(0)
    while chunk := handle.read(_CHUNK):
        yield chunk


def _build_args(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if eq:
            out[key] = value
        elif key in os.environ:  # `--build-arg NAME` takes the value from the environment, like docker
            out[key] = os.environ[key]
    return out


def _labels(values: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (item.partition("=") for item in values)}


def build(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("build", "Build an image from a Dockerfile")
    p.add_argument("-t", "--tag", action="append", default=[], help="Name and optionally a tag (name:tag)")
    p.add_argument("-f", "--file", help="Name of the Dockerfile (default: PATH/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], help="Set build-time variables")
    p.add_argument("--label", action="append", default=[], help="Set metadata for an image")
    p.add_argument("--target", help="Set the target build stage to build")
    p.add_argument("--no-cache", action="store_true", help="Do not use cache when building the image")
    p.add_argument("--pull", action="store_true", help="Always attempt to pull a newer version of the image")
    p.add_argument("--network", default="default", help="Networking mode for the RUN instructions")
    p.add_argument("--iidfile", help="Write the image ID to the file")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the build output and print image ID")
    p.add_argument("context", metavar="PATH")
    opts = p.parse_args(args)
    root = opts.context
    if root == "-":  # the context (a tar) or a lone Dockerfile on stdin: the daemon tells which
        if opts.file == "-":
            raise StatusError("invalid argument: can't use stdin for both build context and dockerfile", 1)
        return _stream_build(ctx, _query(opts, opts.file or "Dockerfile"), _chunks(sys.stdin.buffer), opts.iidfile)
    if not os.path.isdir(root):
        raise StatusError(f'unable to prepare context: path "{root}" not found', 1)
    dockerfile, extra = "Dockerfile", None
    if opts.file:
        if opts.file == "-":
            extra = sys.stdin.buffer.read()
            dockerfile = f".dockerfile.{secrets.token_hex(10)}"
        else:
            full = os.path.abspath(opts.file)
            rel = os.path.relpath(full, os.path.abspath(root))
            if rel.startswith(".."):
                try:
                    with open(full, "rb") as f:
                        extra = f.read()
                except OSError as exc:
                    raise StatusError(f"unable to prepare context: {exc}", 1) from exc
                dockerfile = f".dockerfile.{secrets.token_hex(10)}"
            else:
                dockerfile = rel
    with tempfile.TemporaryFile() as spool:
        _context_tar(root, dockerfile, extra, spool)
        return _stream_build(ctx, _query(opts, dockerfile), _chunks(spool), opts.iidfile)


def _query(opts: Any, dockerfile: str) -> dict[str, Any]:
    return {
        "t": opts.tag or None, "dockerfile": dockerfile, "q": opts.quiet or None,
        "nocache": opts.no_cache or None, "pull": opts.pull or None, "target": opts.target,
        "networkmode": opts.network, "rm": 1, "version": "1",
        "buildargs": json.dumps(_build_args(opts.build_arg)) if opts.build_arg else None,
        "labels": json.dumps(_labels(opts.label)) if opts.label else None,
    }


def _stream_build(ctx: CLIContext, query: dict[str, Any], body: Iterator[bytes], iidfile: str | None) -> int:
    stream = ctx.client.stream("POST", "/build", query, body=body, content_type="application/x-tar")
    image_id = ""
    try:
        for message in stream.json_lines():
            if message.get("error"):
                detail = message.get("errorDetail") or {}
                raise StatusError(str(message["error"]), int(detail.get("code") or 1))
            aux = message.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
            text = message.get("stream") or ""
            if text:
                ctx.out.write(text)
                ctx.out.flush()
    finally:
        stream.close()
    if iidfile and image_id:
        with open(iidfile, "w") as f:
            f.write(image_id)
    return 0


def commit(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("commit", "Create a new image from a container's changes")
    p.add_argument("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the image")
    p.add_argument("-m", "--message", default="", help="Commit message")
    p.add_argument("-p", "--pause", default="true", help="Pause container during commit (default true)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    opts = p.parse_args(args)
    repo, tag = "", ""
    if opts.repository:
        name, sep, maybe_tag = opts.repository.rpartition(":")
        repo, tag = (name, maybe_tag) if sep and "/" not in maybe_tag else (opts.repository, "")
    pause = opts.pause.lower() not in ("false", "0")
    result = ctx.client.post("/commit", {"container": opts.container, "repo": repo or None, "tag": tag or None,
                                         "comment": opts.message or None, "author": opts.author or None,
                                         "pause": 1 if pause else 0, "changes": opts.change or None}, json={})
    ctx.print(str(result["Id"]))
    return 0


def builder_prune(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("builder prune", "Remove build cache")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused build cache, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    opts = p.parse_args(args)
    if not opts.force and sys.stdin.isatty():
        ctx.out.write("WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ")
        ctx.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from engine.humanize import human_size

    report = ctx.client.post("/build/prune", {"all": opts.all or None})
    deleted = report.get("CachesDeleted") or []
    if deleted:
        ctx.print("Deleted build cache objects:")
        for item in deleted:
            ctx.print(item)
        ctx.print()
    ctx.print(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}")
    return 0

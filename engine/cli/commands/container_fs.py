"""Container filesystem commands: cp, export, diff (docker/cli container/{cp,export,diff}.go)."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

from engine.cli.context import CLIContext, StatusError

_KINDS = {0: "C", 1: "A", 2: "D"}
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_IRREGULAR = 1 << 19


def cp(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("cp", "Copy files/folders between a container and the local filesystem\n\n"
                   "Use '-' as the source to read a tar archive from stdin and extract it to a directory\n"
                   "destination in a container. Use '-' as the destination to stream a tar archive of a\n"
                   "container source to stdout.")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="Suppress progress output during copy. Progress output is automatically suppressed if "
                        "no terminal is attached")
    p.add_argument("source", metavar="SRC_PATH")
    p.add_argument("dest", metavar="DEST_PATH")
    opts = p.parse_args(args)
    from engine.cli.copy_paths import CopyError, split_cp_arg

    src_container, src_path = split_cp_arg(opts.source)
    dst_container, dst_path = split_cp_arg(opts.dest)
    if not src_path:
        raise StatusError("source can not be empty", 1)
    if not dst_path:
        raise StatusError("destination can not be empty", 1)
    if src_container and dst_container:
        raise StatusError("copying between containers is not supported", 1)
    if not src_container and not dst_container:
        raise StatusError("must specify at least one container source", 1)
    quiet = opts.quiet or not ctx.err.isatty()
    try:
        if src_container:
            size = _from_container(ctx, src_container, src_path, dst_path, opts.follow_link)
            where = dst_path
        else:
            size = _to_container(ctx, dst_container, src_path, dst_path, opts.follow_link, opts.archive)
            where = opts.dest
    except CopyError as exc:
        raise StatusError(str(exc), 1) from exc
    if not quiet and size is not None:
        from engine.humanize import human_size

        ctx.err.write(f"Successfully copied {human_size(size)} to {where}\n")
    return 0


def _stat(ctx: CLIContext, container: str, path: str) -> dict[str, Any] | None:
    """HEAD .../archive: the path's stat, or None when it is absent (any error, like docker's CLI)."""
    from engine.client.errors import APIError

    try:
        response = ctx.client.request("HEAD", f"/containers/{container}/archive", {"path": path})
    except APIError:
        return None
    header = response.header("x-docker-container-path-stat")
    return json.loads(base64.b64decode(header)) if header else None


def _from_container(ctx: CLIContext, container: str, src_path: str, dst_path: str, follow_link: bool) -> int | None:
    from engine.cli.copy_paths import CopyInfo, extract_to_host, join_link, rebase_name, resolve_local_path

    if dst_path != "-":
        dst_path = resolve_local_path(dst_path)
        _validate_output_path(dst_path)
    name = ""
    if follow_link:
        found = _stat(ctx, container, src_path)
        if found is not None and found["mode"] & _GO_SYMLINK:
            src_path, name = rebase_name(src_path, join_link(src_path, found["linkTarget"]))
    stream = ctx.client.stream("GET", f"/containers/{container}/archive", {"path": src_path})
    try:
        header = stream.headers.get("x-docker-container-path-stat", "")
        found = json.loads(base64.b64decode(header)) if header else {"mode": 0}
        size = 0

        def counted() -> Any:
            nonlocal size
            for chunk in stream.chunks():
                size += len(chunk)
                yield chunk

        if dst_path == "-":
            for chunk in counted():
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return None
        info = CopyInfo(src_path, True, bool(found["mode"] & _GO_DIR), name)
        extract_to_host(counted(), info, dst_path)
        return size
    finally:
        stream.close()


def _validate_output_path(path: str) -> None:
    """docker/cli ValidateOutputPath: the parent must exist; an existing device is refused."""
    import os
    import posixpath
    import stat

    directory = posixpath.dirname(posixpath.normpath(path))
    if directory and not os.path.exists(directory):
        raise StatusError(f'invalid output path: directory "{directory}" does not exist', 1)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StatusError(f"stat {path}: {(exc.strerror or str(exc)).lower()}", 1) from exc
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        raise StatusError(f'invalid output path: "{path}" must be a directory or a regular file: got a device', 1)


def _to_container(ctx: CLIContext, container: str, src_path: str, dst_path: str, follow_link: bool,
                  copy_uid_gid: bool) -> int | None:
    from engine.cli.copy_paths import (
        CopyInfo,
        host_tar_chunks,
        join_link,
        prepare_copy,
        resolve_local_path,
        source_info,
    )

    dst = CopyInfo(dst_path)
    found = _stat(ctx, container, dst_path)
    if found is not None and found["mode"] & _GO_SYMLINK:
        dst.path = join_link(dst_path, found["linkTarget"])
        found = _stat(ctx, container, dst.path)
    if found is not None:
        # docker/cli ValidateOutputPathFileMode: only devices and irregular files are refused.
        why = "got a device" if found["mode"] & _GO_DEVICE else "got an irregular file" if (
            found["mode"] & _GO_IRREGULAR) else ""
        if why:
            raise StatusError(f'destination "{container}:{dst_path}" must be a directory or a regular file: {why}',
                              1)
        dst.exists, dst.is_dir = True, bool(found["mode"] & _GO_DIR)
    size = 0

    def counted(chunks: Any) -> Any:
        nonlocal size
        for chunk in chunks:
            size += len(chunk)
            yield chunk

    if src_path == "-":
        if not dst.is_dir:
            raise StatusError(f'destination "{container}:{dst_path}" must be a directory', 1)
        target_dir, body = dst.path, counted(iter(lambda: sys.stdin.buffer.read(256 * 1024), b""))
    else:
        src = source_info(resolve_local_path(src_path), follow_link)
        target_dir, new_base = prepare_copy(src, dst)
        body = counted(host_tar_chunks(src, new_base))
    response = ctx.client.stream("PUT", f"/containers/{container}/archive",
                                 {"path": target_dir, "noOverwriteDirNonDir": "true",
                                  "copyUIDGID": "true" if copy_uid_gid else None}, body, "application/x-tar")
    response.close()
    return size


def export(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("export", "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")
    opts = p.parse_args(args)
    if not opts.output and sys.stdout.isatty():
        raise StatusError("cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    from engine.cli.output import write_stream

    stream = ctx.client.stream("GET", f"/containers/{opts.container}/export")
    write_stream(stream, opts.output)
    return 0


def diff(ctx: CLIContext, args: list[str]) -> int:
    p = ctx.parser("diff", "Inspect changes to files or directories on a container's filesystem")
    p.add_argument("container", metavar="CONTAINER")
    opts = p.parse_args(args)
    for change in ctx.client.get(f"/containers/{opts.container}/changes") or []:
        ctx.out.write(f"{_KINDS.get(change['Kind'], '?')} {change['Path']}\n")
    return 0

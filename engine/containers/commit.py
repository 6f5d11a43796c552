"""`docker commit`: a container's writable layer → a new image (moby daemon/commit.go).

The new image's config is the container's Config (only the image-config
keys), with the request's config merged over it and the `changes`
(Dockerfile-style `CMD ["x"]`, `ENV A=B`...) applied; its history entry
names the container's command.  A running container is paused while its
layer is read unless `pause=false`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import stat
from typing import Any

from engine.containers.errors import InvalidConfig
from engine.images.commit import History, commit_snapshot
from engine.images.config_changes import apply_changes
from engine.images.errors import NotFound
from engine.images.image_json import IMAGE_CONFIG_KEYS
from engine.images.reference import DEFAULT_TAG, parse_normalized_named
from engine.runtime import syscalls

log = logging.getLogger(__name__)

# Files the runtime creates as bind-mount targets when the image lacks them (see service._write_etc_files).
MOUNT_PLACEHOLDERS = ("etc/hostname", "etc/hosts", "etc/resolv.conf")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def drop_mount_placeholders(snapshotter: Any, key: str) -> None:
    """Remove from a stopped container's upper dir the bind targets the runtime made, so no layer holds them.

    dockerd keeps them in a separate "init" layer under the container's;
    here the container's upper dir holds them, so the ones the image did
    not have are removed before the diff, with the /etc copy-up they caused
    (overlay only: a native snapshot is a full copy and keeps them).  Only
    for an unmounted snapshot: a mounted overlay's upper dir must not change
    under it.
    """
    layer_dirs = getattr(snapshotter, "layer_dirs", None)
    if layer_dirs is None:
        return
    from engine.snapshots.layer_diff import _in_lower_view

    lowers, upper = layer_dirs(key)
    # The container wrote this tree: its /etc may be a symlink ("/etc -> /etc" names the host's
    # /etc from here).  The upper's own etc directory is opened without following any symlink,
    # and its entries are handled relative to that fd.
    upper_fd = os.open(upper, _DIR)
    try:
        try:
            etc_fd = syscalls.openat2(upper_fd, "etc", _DIR, 0, syscalls.RESOLVE_BENEATH | syscalls.RESOLVE_NO_SYMLINKS)
        except OSError:
            return  # no etc directory of its own in the upper (absent, or a symlink): nothing of ours there
        try:
            for rel in MOUNT_PLACEHOLDERS:
                name = rel.removeprefix("etc/")
                try:
                    st = os.stat(name, dir_fd=etc_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode) and not _in_lower_view(lowers, rel):
                    os.unlink(name, dir_fd=etc_fd)
            empty = not os.listdir(etc_fd)
            try:
                opaque = os.getxattr(f"/proc/self/fd/{etc_fd}", "trusted.overlay.opaque") == b"y"
            except OSError:
                opaque = False
        finally:
            os.close(etc_fd)
        if empty and not opaque and _in_lower_view(lowers, "etc"):
            os.rmdir("etc", dir_fd=upper_fd)
    finally:
        os.close(upper_fd)


async def commit_container(service: Any, ref: str, repo: str = "", tag: str = "", comment: str = "",
                           author: str = "", pause: bool = True, changes: list[str] | None = None,
                           config: dict[str, Any] | None = None) -> str:
    """Commit container ``ref``; returns the new image id.  ``service`` is the ContainerService."""
    record = service.store.get(ref)
    tags = []
    if repo:
        named = parse_normalized_named(f"{repo}:{tag}" if tag else repo)
        if named.digest is not None:
            raise InvalidConfig("refusing to create a tag with a digest reference")
        tags.append(named if named.tag is not None else named.with_tag(DEFAULT_TAG))
    runtime = {key: record.config[key] for key in IMAGE_CONFIG_KEYS if record.config.get(key) not in (None, "")}
    for key, value in (config or {}).items():
        if key in IMAGE_CONFIG_KEYS and value not in (None, "", [], {}):
            runtime[key] = value
    runtime = apply_changes(runtime, [c for c in changes or [] if c.strip()])
    try:
        parent = service.images.get(record.image_id)
    except NotFound:
        parent = None
    command = [*(record.config.get("Entrypoint") or []), *(record.config.get("Cmd") or [])]
    history = History(shlex.join(command) if command else "", comment=comment, author=author)
    if record.state.status not in ("running", "paused", "restarting"):
        await asyncio.to_thread(drop_mount_placeholders, service.snapshotter, record.snapshot_key)
    paused = False
    if pause and record.state.status == "running":
        await service.pause(record.id)
        paused = True
    try:
        image = await asyncio.to_thread(commit_snapshot, service.images, service.snapshotter, record.snapshot_key,
                                        parent, runtime, history, tags)
    finally:
        if paused:
            with contextlib.suppress(Exception):
                await service.unpause(record.id)
    service.publish_event(record, "commit", {"comment": comment} if comment else None)
    log.info("committed container %s as %s", record.id[:12], image.id)
    return str(image.id)

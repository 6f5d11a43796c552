"""``RUN --mount=type=...,target=...`` values (Dockerfile reference, "RUN --mount"; BuildKit commands_runmount.go).

The value is one CSV record of ``key=value`` fields; ``type`` defaults to
``bind``; ``ro``/``rw``/``required`` may stand alone.  Only syntax is checked
here; whether a cache id or secret exists is the executor's business.
"""

from __future__ import annotations

import csv

from engine.build.errors import DockerfileError
from engine.build.instructions import RunMount

MOUNT_TYPES = frozenset({"bind", "cache", "tmpfs", "secret", "ssh"})
_KEYS = frozenset(
    {
        "type",
        "from",
        "source",
        "src",
        "target",
        "dst",
        "destination",
        "readonly",
        "ro",
        "readwrite",
        "rw",
        "required",
        "id",
        "sharing",
        "mode",
        "uid",
        "gid",
        "size",
        "env",
    }
)
_SHARING = frozenset({"shared", "private", "locked"})
_TARGET_KEYS = ("target", "dst", "destination")


def parse_mount(value: str, line: int) -> RunMount:
    try:
        fields = next(csv.reader([value]), [])
    except csv.Error as exc:
        raise DockerfileError(f"invalid mount {value!r}: {exc}", line) from exc
    mount_type = "bind"
    target: str | None = None
    options: list[tuple[str, str]] = []
    for item in fields:
        key, has_value, val = item.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro", "readwrite", "rw", "required"):
                options.append((key, "true"))
                continue
            raise DockerfileError(f"invalid field '{item}' must be a key=value pair", line)
        if key not in _KEYS:
            raise DockerfileError(f"unexpected key '{key}' in '{item}'", line)
        if key == "type":
            if val.lower() not in MOUNT_TYPES:
                raise DockerfileError(f'unsupported mount type "{val}"', line)
            mount_type = val.lower()
            continue
        if key in _TARGET_KEYS:
            target = val
            continue
        if key == "sharing" and val and val.lower() not in _SHARING:
            raise DockerfileError(f'unsupported sharing value "{val}"', line)
        if key == "mode":
            try:
                int(val, 8)
            except ValueError as exc:
                raise DockerfileError(f"failed to parse mode {val!r}", line) from exc
        options.append((key, val))
    keys = {key for key, _ in options}
    if "sharing" in keys and mount_type != "cache":
        raise DockerfileError(f"invalid cache sharing set for {mount_type} mount", line)
    if "mode" in keys and mount_type not in ("secret", "ssh", "cache"):
        raise DockerfileError(f'mode not allowed for "{mount_type}" type mounts', line)
    if mount_type == "secret" and "from" in keys:
        raise DockerfileError("secret mount should not have a from", line)
    if mount_type == "secret" and target is None and not keys & {"source", "src", "id"}:
        raise DockerfileError("invalid secret mount. one of source or target required", line)
    return RunMount(mount_type, target, tuple(options))

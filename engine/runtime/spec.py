"""Loading config.json from a bundle and checking what the runtime relies on.

runtime-spec bundle.md: a bundle is a directory with config.json and the root
filesystem at ``root.path`` (relative to the bundle).  Validation here is the
subset the runtime needs to act safely; the full JSON Schema lives in the
runtime-spec and is checked in tests.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import InvalidSpec

Spec = dict[str, Any]

SUPPORTED_MAJOR = "1."
# runc (libcontainer/container_linux.go) restricts ids to this alphabet so
# they are safe as file names and cgroup names.
_ID_RE = re.compile(r"^[\w+\-.]+$")


def check_container_id(container_id: str) -> None:
    if not container_id or not _ID_RE.match(container_id) or container_id in (".", ".."):
        raise InvalidSpec(f"invalid container id format: {container_id!r}")


def load_spec(bundle: str) -> Spec:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise InvalidSpec(f"JSON specification file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise InvalidSpec(f"cannot read {path}: {exc}") from None
    if not isinstance(spec, dict):
        raise InvalidSpec(f"{path}: top level is not an object")
    validate_spec(spec)
    return spec


def validate_spec(spec: Mapping[str, Any], need_process: bool = True) -> None:
    version = spec.get("ociVersion")
    if not isinstance(version, str) or not version.startswith(SUPPORTED_MAJOR):
        raise InvalidSpec(f"unsupported ociVersion {version!r} (need 1.x)")
    root = spec.get("root")
    if not isinstance(root, Mapping) or not isinstance(root.get("path"), str) or not root["path"]:
        raise InvalidSpec("root.path is required")
    process = spec.get("process")
    if need_process:
        if not isinstance(process, Mapping):
            raise InvalidSpec("process is required")
        validate_process(process)
    for mount in spec.get("mounts", []) or []:
        dest = mount.get("destination") if isinstance(mount, Mapping) else None
        if not isinstance(dest, str) or not dest.startswith("/"):
            # runc warns and accepts relative destinations; Berth refuses them
            # like the spec's MUST (config.md#mounts: "MUST be an absolute path").
            raise InvalidSpec(f"mount destination must be an absolute path: {dest!r}")
    linux = spec.get("linux", {}) or {}
    for ns in linux.get("namespaces", []) or []:
        if ns.get("type") not in NAMESPACE_TYPES:
            raise InvalidSpec(f"unknown namespace type {ns.get('type')!r}")


def validate_process(process: Mapping[str, Any]) -> None:
    args = process.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise InvalidSpec("process.args must be a non-empty list of strings")
    cwd = process.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise InvalidSpec(f"process.cwd must be an absolute path: {cwd!r}")
    user = process.get("user", {}) or {}
    for key in ("uid", "gid"):
        if not isinstance(user.get(key, 0), int):
            raise InvalidSpec(f"process.user.{key} must be an integer")


def rootfs_path(bundle: str, spec: Mapping[str, Any]) -> str:
    path = str(spec["root"]["path"])
    full = path if os.path.isabs(path) else os.path.join(bundle, path)
    full = os.path.realpath(full)
    if not os.path.isdir(full):
        raise InvalidSpec(f"rootfs ({full}) does not exist")
    return full


NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

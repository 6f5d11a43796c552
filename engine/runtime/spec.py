"""Loading config.json from a bundle and checking what the runtime relies on.

runtime-spec bundle.md: a bundle is a directory with config.json and the root
filesystem at ``root.path`` (relative to the bundle).  Validation here is the
subset the runtime needs to act safely (config_check.py: each field it reads,
named in the error); the full JSON Schema lives in the runtime-spec and is
checked in tests.
"""

from __future__ import annotations

import os

from . import fastjson
from .abcs import Mapping
from .config_check import NAMESPACE_TYPES, check_config, check_process
from .errors import InvalidSpec
from .smallfiles import read_text

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["NAMESPACE_TYPES", "Spec", "check_container_id", "load_spec", "rootfs_path", "validate_spec"]

Spec = dict[str, "Any"]

SUPPORTED_MAJOR = "1."
# runc (libcontainer/container_linux.go) restricts ids to ^[\w+-.]+$ so they are safe as file names
# and cgroup names.  Checked per character (re's \w is str.isalnum() or "_") rather than with re,
# whose import (and enum's) is ~2 ms of every berth-runtime call; unlike re's $, no trailing newline passes.
_ID_PUNCTUATION = frozenset("_+-.")


def check_container_id(container_id: str) -> None:
    if (not container_id or container_id in (".", "..")
            or not all(c.isalnum() or c in _ID_PUNCTUATION for c in container_id)):
        raise InvalidSpec(f"invalid container id format: {container_id!r}")


def load_spec(bundle: str) -> Spec:
    path = os.path.join(bundle, "config.json")
    try:
        spec = fastjson.loads(read_text(path))
    except FileNotFoundError:
        raise InvalidSpec(f"JSON specification file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise InvalidSpec(f"cannot read {path}: {exc}") from None
    if not isinstance(spec, dict):
        raise InvalidSpec(f"{path}: top level is not an object")
    validate_spec(spec)
    return spec


def validate_spec(spec: Mapping[str, Any], need_process: bool = True) -> None:
    """The fields the runtime acts on (config_check), then the version it can honour."""
    check_config(spec, need_process)
    version = spec["ociVersion"]
    if not version.startswith(SUPPORTED_MAJOR):
        raise InvalidSpec(f"config.json: ociVersion {version!r} is not supported (need 1.x)")


def validate_process(process: Mapping[str, Any]) -> None:
    if not isinstance(process, Mapping):
        raise InvalidSpec("process must be an object")
    check_process(process)


def rootfs_path(bundle: str, spec: Mapping[str, Any]) -> str:
    path = str(spec["root"]["path"])
    full = path if os.path.isabs(path) else os.path.join(bundle, path)
    full = os.path.realpath(full)
    if not os.path.isdir(full):
        raise InvalidSpec(f"config.json: root.path: rootfs ({full}) does not exist")
    return full



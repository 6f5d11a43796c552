"""Runs the host tools a build step needs, with failures that say what broke."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from installers.images.errors import BuildStepFailed, HostToolMissing

log = logging.getLogger(__name__)

# Enough of a failing command's stderr to see why, without flooding the terminal.
_STDERR_TAIL = 2000


def require_tool(name: str, package: str) -> str:
    """The tool's path, or HostToolMissing naming the Debian package that provides it."""
    path = shutil.which(name)
    if path is None:
        raise HostToolMissing(f"{name} not found: install the Debian package {package!r} (make host-deps)")
    return path


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Runs argv to completion; returns its stdout, raises BuildStepFailed on a non-zero exit."""
    log.debug("running %s", " ".join(argv))
    proc = subprocess.run(
        list(argv), cwd=cwd, env=dict(env) if env is not None else None, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise BuildStepFailed(
            f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr.strip()[-_STDERR_TAIL:]}"
        )
    return proc.stdout

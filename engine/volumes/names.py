"""Volume names: Docker's local-driver grammar and generated names for anonymous volumes."""

from __future__ import annotations

import re
import secrets

from engine.volumes.errors import InvalidParameter

# moby: daemon/names.RestrictedNameChars; at least two characters.
RESTRICTED_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NAME = re.compile(rf"^{RESTRICTED_NAME_CHARS}+$")

# Docker 23+ marks the volumes it makes for `-v /ctr` and image VOLUMEs with this
# label, and `volume prune` removes only those unless asked for all=true.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def validate_name(name: str) -> None:
    """Raise InvalidParameter with Docker's wording when ``name`` is not a local volume name."""
    if len(name) == 1:
        raise InvalidParameter("volume name is too short, names should be at least two alphanumeric characters")
    if not _NAME.match(name):
        raise InvalidParameter(
            f'"{name}" includes invalid characters for a local volume name, only "{RESTRICTED_NAME_CHARS}" '
            "are allowed. If you intended to pass a host directory, use absolute path"
        )


def generate_name() -> str:
    """64 hex characters, like moby's stringid.GenerateRandomID."""
    return secrets.token_hex(32)

"""sha256 digests in the `sha256:<64 hex>` form that OCI descriptors and image ids use."""

from __future__ import annotations

import hashlib
import re

from engine.images.errors import InvalidParameter

_SHA256_RE = re.compile(r"^sha256:([a-f0-9]{64})$")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_sha256(digest: str) -> bool:
    return _SHA256_RE.match(digest) is not None


def hex_of(digest: str) -> str:
    """The 64-hex part of a sha256 digest; refuses anything else (and so any path trick)."""
    match = _SHA256_RE.match(digest)
    if match is None:
        raise InvalidParameter(f"unsupported or malformed digest: {digest!r}")
    return match.group(1)


def short_id(digest: str) -> str:
    """Docker's 12-hex short id (stringid.TruncateID)."""
    return digest.split(":", 1)[-1][:12]

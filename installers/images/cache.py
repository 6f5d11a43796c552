"""Remembers which inputs built each archive, so an unchanged image is not rebuilt.

A small JSON stamp per image under <out>/.cache/ records the input key and the
archive's sha256; the archive counts as up to date only when both still match.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from engine.images.archive_write import digest_file

log = logging.getLogger(__name__)


def files_digest(paths: Iterable[Path]) -> str:
    """One sha256 over the names and contents of paths (order-independent)."""
    h = hashlib.sha256()
    for path in sorted(set(paths)):
        h.update(path.name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


class BuildCache:
    """Stamps in <out>/.cache/<name>.json."""

    def __init__(self, out_dir: Path) -> None:
        self._dir = out_dir / ".cache"

    def _stamp(self, name: str) -> Path:
        return self._dir / f"{name}.json"

    def current_digest(self, name: str, key: str | None, archive: Path) -> str | None:
        """The archive's digest if the stamp says it was built from `key` (any key when
        None) and the archive is still exactly what was built; None otherwise."""
        stamp = self._stamp(name)
        if not stamp.is_file() or not archive.is_file():
            return None
        try:
            recorded = json.loads(stamp.read_text())
        except ValueError:
            log.warning("%s: unreadable cache stamp, rebuilding", stamp)
            return None
        if key is not None and recorded.get("key") != key:
            return None
        # A truncated or edited archive must not pass as cached.
        digest = digest_file(archive).digest
        return digest if recorded.get("digest") == digest else None

    def record(self, name: str, key: str, archive_digest: str) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        tmp = self._stamp(name).with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "digest": archive_digest}, indent=1) + "\n")
        tmp.replace(self._stamp(name))

    def forget(self, name: str) -> None:
        self._stamp(name).unlink(missing_ok=True)

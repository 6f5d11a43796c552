"""Where the overlay snapshotter keeps its records.

For now a JSON file under the snapshotter's root, replaced atomically on
every change.  The engine's single metadata database (engine/store/) will own
this state eventually; the snapshotter only talks to :class:`MetadataStore`,
so moving there means writing one more implementation of that protocol.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from engine.snapshots.errors import SnapshotError

FORMAT_VERSION = 1


@dataclass
class SnapshotRecord:
    key: str
    id: int  # names the directory snapshots/<id>: short, so mount options stay short
    kind: str  # a snapshotter.Kind value
    parent: str | None
    labels: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0
    size: int = 0  # disk usage, fixed at commit time
    inodes: int = 0


@dataclass
class SnapshotState:
    next_id: int = 1
    snapshots: dict[str, SnapshotRecord] = field(default_factory=dict)


class MetadataStore(Protocol):
    def load(self) -> SnapshotState: ...

    def save(self, state: SnapshotState) -> None: ...


class JsonMetadataStore:
    """One JSON document, written to a temp file, fsynced and renamed over the old one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SnapshotState:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return SnapshotState()
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"cannot read snapshot metadata {self.path}: {exc}") from exc
        if raw.get("version") != FORMAT_VERSION:
            raise SnapshotError(f"snapshot metadata {self.path} has unknown version {raw.get('version')!r}")
        records = {k: SnapshotRecord(**v) for k, v in raw["snapshots"].items()}
        return SnapshotState(next_id=int(raw["next_id"]), snapshots=records)

    def save(self, state: SnapshotState) -> None:
        doc = {
            "version": FORMAT_VERSION,
            "next_id": state.next_id,
            "snapshots": {k: asdict(v) for k, v in sorted(state.snapshots.items())},
        }
        fd, tmp = tempfile.mkstemp(prefix=".metadata-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

"""Per-layer progress of pulls and pushes, in the terms Docker's JSON-lines stream uses.

The API turns each event into `{"status": ..., "progressDetail": {"current": ...,
"total": ...}, "id": ...}` (moby pkg/jsonmessage); the strings below are dockerd's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

PULLING_FS_LAYER = "Pulling fs layer"
WAITING = "Waiting"
DOWNLOADING = "Downloading"
RETRYING = "Retrying"
VERIFYING_CHECKSUM = "Verifying Checksum"
DOWNLOAD_COMPLETE = "Download complete"
ALREADY_EXISTS = "Already exists"

PREPARING = "Preparing"
PUSHING = "Pushing"
PUSHED = "Pushed"
LAYER_ALREADY_EXISTS = "Layer already exists"
MOUNTED_FROM = "Mounted from"  # followed by " <repository>"


@dataclass(frozen=True)
class ProgressEvent:
    """One progress line: `id` is the layer's short id (12 hex digits of its digest)."""

    id: str
    status: str
    current: int | None = None
    total: int | None = None

    def to_json(self) -> dict[str, object]:
        """The JSON-lines message dockerd writes for this event (pkg/jsonmessage)."""
        message: dict[str, object] = {"status": self.status, "id": self.id}
        if self.current is not None:
            detail: dict[str, int] = {"current": self.current}
            if self.total:
                detail["total"] = self.total
            message["progressDetail"] = detail
        else:
            message["progressDetail"] = {}
        return message


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """The default callback: progress is optional."""

"""A volume as the database keeps it, and as the Engine API shows it (definitions/Volume)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from engine.volumes.names import ANONYMOUS_LABEL

LOCAL_DRIVER = "local"


class UsageData(TypedDict):
    Size: int
    RefCount: int


@dataclass(frozen=True)
class VolumeRecord:
    name: str
    created_at: str  # RFC 3339, UTC
    driver: str = LOCAL_DRIVER
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    # Set once image content was copied in (or copy-up was declined): never copy twice.
    populated: bool = False

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def to_api(self, mountpoint: str, usage: UsageData | None = None) -> dict[str, Any]:
        """The Volume JSON of `GET /volumes/{name}` and of each `GET /volumes` entry."""
        doc: dict[str, Any] = {
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": dict(self.labels),
            "Mountpoint": mountpoint,
            "Name": self.name,
            "Options": dict(self.options),
            "Scope": "local",
        }
        if usage is not None:
            # Only /system/df asks for it; other endpoints omit the key (swagger: "omitted in other endpoints").
            doc["UsageData"] = dict(usage)
        return doc

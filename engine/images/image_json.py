"""Engine API JSON shapes for images: ImageInspect, ImageSummary, HistoryResponseItem.

Field names, nullability and defaults follow the Engine API v1.51 definitions
and what dockerd's classic image store returns, since the CLI, compose and
docker-py read these documents directly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from engine.images.image_records import ImageRecord

# The keys of the Engine API's ImageConfig, in the order dockerd prints them.
IMAGE_CONFIG_KEYS = (
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "Shell",
)
ZERO_TIME = "0001-01-01T00:00:00Z"
_FRACTION_RE = re.compile(r"\.(\d+)")


def parse_time(text: str | None) -> datetime | None:
    """RFC 3339 with nanoseconds (Go's format) → datetime; None when absent or unreadable."""
    if not text:
        return None
    # Python 3.11 keeps at most microseconds: cut Go's nanoseconds down to 6 digits.
    text = _FRACTION_RE.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def unix_time(text: str | None) -> int:
    parsed = parse_time(text)
    return int(parsed.timestamp()) if parsed else 0


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_config_json(config: dict[str, Any]) -> dict[str, Any]:
    """The `Config` member: ImageConfig keys only, empty ones left out (dockerd 28
    serializes this with omitempty, and the v1.51 schema has no nulls here)."""
    runtime: dict[str, Any] = config.get("config") or {}
    return {key: runtime[key] for key in IMAGE_CONFIG_KEYS if runtime.get(key) not in (None, "", [], {})}


def inspect_json(record: ImageRecord, config: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Id": record.id,
        "RepoTags": [ref.familiar() for ref in record.tags],
        "RepoDigests": [ref.familiar() for ref in record.repo_digests],
        "Parent": record.parent,
        "Comment": config.get("comment") or "",
    }
    if config.get("created"):
        doc["Created"] = config["created"]
    doc.update(
        {
            "DockerVersion": config.get("docker_version") or "",
            "Author": config.get("author") or "",
            "Config": image_config_json(config),
            "Architecture": config.get("architecture") or "",
        }
    )
    if config.get("variant"):
        doc["Variant"] = config["variant"]
    doc["Os"] = config.get("os") or ""
    if config.get("os.version"):
        doc["OsVersion"] = config["os.version"]
    doc.update(
        {
            "Size": record.size,
            # Filled in by the snapshotter layer once images are unpacked.
            "GraphDriver": {"Name": "overlayfs", "Data": {}},
            "RootFS": {"Type": "layers", "Layers": record.diff_ids},
            "Metadata": {"LastTagTime": record.last_tag_time or ZERO_TIME},
        }
    )
    target = record.target
    if target is not None:
        doc["Descriptor"] = {"mediaType": target.media_type, "digest": target.digest, "size": target.size}
    return doc


def summary_json(record: ImageRecord, config: dict[str, Any], containers: int = -1) -> dict[str, Any]:
    """One entry of `GET /images/json`."""
    runtime = config.get("config") or {}
    return {
        "Id": record.id,
        "ParentId": record.parent,
        "RepoTags": [ref.familiar() for ref in record.tags],
        "RepoDigests": [ref.familiar() for ref in record.repo_digests],
        "Created": unix_time(config.get("created")),
        "Size": record.size,
        "SharedSize": -1,
        "Labels": runtime.get("Labels") or {},
        "Containers": containers,
    }


def history_json(chain: list[tuple[ImageRecord, dict[str, Any]]]) -> list[dict[str, Any]]:
    """`GET /images/{name}/history`, newest first, like moby's image_history.go.

    `chain` is the image followed by its parents (built images only have parents).
    Each history entry that made a layer gets that layer's size; the rows are
    then labelled with image ids/tags walking up the parent chain, the rest
    being "<missing>".
    """
    record, config = chain[0]
    rows: list[dict[str, Any]] = []
    layer_index = 0
    for entry in config.get("history") or []:
        size = 0
        if not entry.get("empty_layer"):
            if layer_index < len(record.layers):
                size = record.layers[layer_index].unpacked_size
            layer_index += 1
        rows.append(
            {
                "Id": "<missing>",
                "Created": unix_time(entry.get("created")),
                "CreatedBy": entry.get("created_by") or "",
                "Tags": [],
                "Size": size,
                "Comment": entry.get("comment") or "",
            }
        )
    rows.reverse()
    for row, (image, _config) in zip(rows, chain, strict=False):
        row["Id"] = image.id
        row["Tags"] = [ref.familiar() for ref in image.tags if ref.tag is not None]
    return rows

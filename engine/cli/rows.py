"""API list entries → the string fields docker's formatter contexts expose (`{{.ID}}`, `{{.RunningFor}}`...).

Mirrors cli/command/formatter/{container,image,history}.go: what each field
prints, how it is truncated, and the column header it gets in `table` mode.
"""

from __future__ import annotations

import time

from engine.humanize import human_duration, human_size

# Not `from typing import ...`: the `berth ps` fast path (engine/cli/fast.py) builds its rows here, and
# typing + collections are ~3 ms of its start-up.  mypy reads this name as typing.TYPE_CHECKING.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

CONTAINER_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
    "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS", "Platform": "PLATFORM",
}
PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
    "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
}
IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                   "Size": "SIZE", "Comment": "COMMENT"}
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_NOT_HUMAN = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def short_id(full: str) -> str:
    """docker's TruncateID: drop the algorithm, keep 12 hex digits."""
    return full.partition(":")[2][:12] if ":" in full else full[:12]


def ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def go_time(seconds: float) -> str:
    """Go's time.Time.String() for a local time: `2026-11-27 23:04:43 +0000 UTC`."""
    local = time.localtime(seconds)
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", local) + (local.tm_zone or "")


def rfc3339(seconds: float) -> str:
    """Go's time.RFC3339 in local time: `2026-05-07T20:33:45Z` in UTC, else `...+01:00`."""
    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    sign, minutes = ("+" if offset > 0 else "-"), abs(offset) // 60
    zone = "Z" if offset == 0 else f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


def ago(seconds: float, now: float | None = None) -> str:
    return human_duration((time.time() if now is None else now) - seconds) + " ago"


def go_quote(text: str) -> str:
    """strconv.Quote for the printable text commands hold."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def _labels(labels: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))


def _ports(ports: list[dict[str, Any]] | None) -> str:
    out = []
    for port in ports or []:
        inside = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
        if port.get("PublicPort"):
            out.append(f"{port.get('IP', '0.0.0.0')}:{port['PublicPort']}->{inside}")
        else:
            out.append(inside)
    return ", ".join(out)


def _image_name(entry: Mapping[str, Any], trunc: bool) -> str:
    image = str(entry.get("Image") or "")
    if not image:
        return "<no image>"
    if trunc and short_id(str(entry.get("ImageID") or "")) == short_id(image):
        return short_id(image)
    if trunc and "@" in image:
        return image.partition("@")[0]
    return image


class LabeledRow(dict[str, str]):
    """A row whose template also offers docker's `{{.Label "key"}}` method (container, volume, network).

    Like docker's typed formatter contexts, a field it does not have is a template error, not `<no value>`.
    """

    template_type = "*formatter.Context"

    def __init__(self, fields: Mapping[str, str], labels: Mapping[str, str] | None) -> None:
        super().__init__(fields)
        self.labels = dict(labels or {})

    def Label(self, name: str) -> str:  # the name templates call, as in docker
        return str(self.labels.get(name, ""))


def labels_text(labels: Mapping[str, str] | None) -> str:
    """docker's `{{.Labels}}`: key=value pairs, comma-separated."""
    return _labels(labels)


def container_row(entry: Mapping[str, Any], trunc: bool = True, now: float | None = None) -> dict[str, str]:
    names = [n.lstrip("/") for n in entry.get("Names") or []]
    if trunc:
        # Legacy link names (`/web/db`) are hidden unless --no-trunc, like docker ps.
        names = [n for n in names if "/" not in n][:1] or names[:1]
    command = str(entry.get("Command") or "")
    size_rw, size_root = int(entry.get("SizeRw") or 0), int(entry.get("SizeRootFs") or 0)
    size = human_size(size_rw)
    if size_root > 0:
        size = f"{size} (virtual {human_size(size_root)})"
    networks = (entry.get("NetworkSettings") or {}).get("Networks") or {}
    mounts = entry.get("Mounts") or []
    return LabeledRow({
        "ID": short_id(entry["Id"]) if trunc else entry["Id"],
        "Image": _image_name(entry, trunc),
        "Command": go_quote(ellipsis(command, 20) if trunc else command),
        "CreatedAt": go_time(entry.get("Created") or 0),
        "RunningFor": ago(entry.get("Created") or 0, now),
        "Ports": _ports(entry.get("Ports")),
        "State": str(entry.get("State") or ""),
        "Status": str(entry.get("Status") or ""),
        "Size": size,
        "Names": ",".join(names),
        "Labels": _labels(entry.get("Labels")),
        "Mounts": ",".join(ellipsis(str(m.get("Name") or m.get("Source") or ""), 15) if trunc
                           else str(m.get("Name") or m.get("Source") or "") for m in mounts),
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Driver") == "local")),
        "Networks": ",".join(sorted(networks)),
    }, entry.get("Labels"))


def image_rows(entry: Mapping[str, Any], trunc: bool = True, now: float | None = None) -> list[dict[str, str]]:
    """One row per repository:tag (docker's imageFormatTaggedAndDigest); `<none>` rows for dangling images."""
    created = float(entry.get("Created") or 0)
    containers = int(entry.get("Containers", -1) if entry.get("Containers") is not None else -1)
    base = {
        "ID": short_id(entry["Id"]) if trunc else entry["Id"],
        "Digest": "<none>",
        "CreatedSince": ago(created, now),
        "CreatedAt": go_time(created),
        "Size": human_size(int(entry.get("Size") or 0)),
        "Containers": str(containers) if containers >= 0 else "N/A",
        "VirtualSize": human_size(int(entry.get("VirtualSize") or entry.get("Size") or 0)),
        "SharedSize": human_size(entry["SharedSize"]) if (entry.get("SharedSize") or -1) >= 0 else "N/A",
        "UniqueSize": "N/A",
    }
    pairs: list[tuple[str, str]] = []
    for ref in entry.get("RepoTags") or []:
        repo, _, tag = str(ref).rpartition(":")
        if "/" in tag or not repo:
            repo, tag = str(ref), "<none>"
        if (repo, tag) != ("<none>", "<none>"):
            pairs.append((repo, tag))
    tagged_repos = {repo for repo, _ in pairs}
    for ref in entry.get("RepoDigests") or []:
        repo = str(ref).partition("@")[0]
        if repo not in tagged_repos:
            pairs.append((repo, "<none>"))
            tagged_repos.add(repo)
    if not pairs:
        pairs = [("<none>", "<none>")]
    return [dict(base, Repository=repo, Tag=tag) for repo, tag in pairs]


def history_row(entry: Mapping[str, Any], trunc: bool = True, human: bool = True,
                now: float | None = None) -> dict[str, str]:
    created = float(entry.get("Created") or 0)
    image_id = str(entry.get("Id") or "<missing>")
    created_by = " ".join(str(entry.get("CreatedBy") or "").split()) if trunc else str(entry.get("CreatedBy") or "")
    return {
        "ID": short_id(image_id) if trunc and image_id != "<missing>" else image_id,
        "CreatedSince": ago(created, now) if human else rfc3339(created),
        "CreatedAt": rfc3339(created),
        "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
        "Size": human_size(int(entry.get("Size") or 0)) if human else str(entry.get("Size") or 0),
        "Comment": str(entry.get("Comment") or ""),
    }

"""What the daemon remembers about networks and container endpoints (metadata DB area "network_records").

Two tables, the one source of truth the NetworkService replays at start:
  networks            one row per network (predefined bridge/host/none and user ones), its API document
  container_networks  one row per (container, network): the requested EndpointConfig and, while
                      the container runs, the wired endpoint (address, MAC, veth, published ports)
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.network.errors import Conflict
from engine.store import MetadataDB, Migration

AREA = "network_records"
MIGRATIONS = [
    Migration(1, (
        "CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)",
        "CREATE TABLE container_networks (container_id TEXT NOT NULL, network_id TEXT NOT NULL, "
        "config TEXT NOT NULL, state TEXT, PRIMARY KEY (container_id, network_id))",
    )),
]


@dataclass
class NetworkRecord:
    id: str
    name: str
    driver: str  # bridge | host | null
    created: str
    bridge: str = ""  # the Linux bridge's name for driver "bridge"
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam_config: list[dict[str, str]] = field(default_factory=list)  # as requested (Subnet, Gateway)
    ipam_options: dict[str, str] = field(default_factory=dict)

    @property
    def predefined(self) -> bool:
        return self.name in ("bridge", "host", "none")


@dataclass
class EndpointRequest:
    """NetworkingConfig.EndpointsConfig[<network>] as far as Berth uses it."""

    aliases: list[str] = field(default_factory=list)
    ipv4_address: str = ""
    mac_address: str = ""


@dataclass
class WiredEndpoint:
    """A connected endpoint, enough to rebuild bridge.Endpoint and the published ports after a restart."""

    endpoint_id: str
    host_ifname: str
    container_ifname: str
    address: str  # "172.18.0.2/16"
    gateway: str
    mac_address: str
    mtu: int
    ports: list[dict[str, Any]] = field(default_factory=list)  # PortBinding fields
    dns_names: list[str] = field(default_factory=list)
    dns_servers: list[str] = field(default_factory=list)  # the container's --dns, for the embedded resolver


@dataclass
class ContainerNetwork:
    container_id: str
    network_id: str
    request: EndpointRequest
    wired: WiredEndpoint | None = None


class NetworkRecords:
    def __init__(self, db: MetadataDB) -> None:
        self.db = db
        db.ensure_schema(AREA, MIGRATIONS)

    # ------------------------------------------------------------ networks
    def networks(self) -> list[NetworkRecord]:
        with self.db.snapshot() as conn:
            rows = conn.execute("SELECT doc FROM networks ORDER BY rowid").fetchall()
        return [NetworkRecord(**json.loads(r[0])) for r in rows]

    def add_network(self, record: NetworkRecord) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute("INSERT INTO networks(id, name, doc) VALUES (?, ?, ?)",
                             (record.id, record.name, json.dumps(asdict(record))))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"network with name {record.name} already exists") from exc

    def remove_network(self, network_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))

    # ------------------------------------------------------------ container endpoints
    def container_networks(self, container_id: str | None = None, network_id: str | None = None
                           ) -> list[ContainerNetwork]:
        query, args = "SELECT container_id, network_id, config, state FROM container_networks", []
        where = []
        if container_id is not None:
            where.append("container_id = ?")
            args.append(container_id)
        if network_id is not None:
            where.append("network_id = ?")
            args.append(network_id)
        if where:
            query += " WHERE " + " AND ".join(where)
        with self.db.snapshot() as conn:
            rows = conn.execute(query + " ORDER BY rowid", args).fetchall()
        return [ContainerNetwork(r[0], r[1], EndpointRequest(**json.loads(r[2])),
                                 WiredEndpoint(**json.loads(r[3])) if r[3] else None) for r in rows]

    def save_container_network(self, entry: ContainerNetwork) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO container_networks(container_id, network_id, config, state) "
                "VALUES (?, ?, ?, ?)",
                (entry.container_id, entry.network_id, json.dumps(asdict(entry.request)),
                 json.dumps(asdict(entry.wired)) if entry.wired else None),
            )

    def remove_container_network(self, container_id: str, network_id: str | None = None) -> None:
        with self.db.transaction() as conn:
            if network_id is None:
                conn.execute("DELETE FROM container_networks WHERE container_id = ?", (container_id,))
            else:
                conn.execute("DELETE FROM container_networks WHERE container_id = ? AND network_id = ?",
                             (container_id, network_id))

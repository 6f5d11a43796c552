"""Where IPAM keeps its state: a small interface with two implementations.

`DbIpamStore` writes to the daemon's metadata database (area "networks"), the
one owner of persistent state (STYLE.md "The house"); `JsonIpamStore` keeps a
JSON file for callers without a database (tools, early bring-up).  Both pass
the same tests (tests/network/test_ipam.py runs every test on each).

A store only records; choosing subnets and addresses is engine/network/ipam.py.
Uniqueness is still enforced here, so two allocations can never both succeed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol

from engine.network.errors import Conflict, NotFound
from engine.store import MetadataDB, Migration

AREA = "networks"
MIGRATIONS = [
    Migration(1, (
        "CREATE TABLE ipam_subnets (network_id TEXT PRIMARY KEY, subnet TEXT NOT NULL UNIQUE, "
        "gateway TEXT NOT NULL, last TEXT)",
        "CREATE TABLE ipam_addresses (network_id TEXT NOT NULL REFERENCES ipam_subnets(network_id) "
        "ON DELETE CASCADE, address TEXT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (network_id, address))",
    )),
]


@dataclass(frozen=True)
class SubnetRecord:
    network_id: str
    subnet: IPv4Network
    gateway: IPv4Address
    # The address handed out most recently: the next search starts after it, so a
    # released address is not reused at once (libnetwork's bitseq does the same).
    last: IPv4Address | None = None


class IpamStore(Protocol):
    def subnets(self) -> list[SubnetRecord]: ...

    def add_subnet(self, record: SubnetRecord) -> None:
        """Conflict if the network already has a subnet or the subnet is taken."""

    def remove_subnet(self, network_id: str) -> None:
        """Forget the subnet and every address in it (idempotent)."""

    def addresses(self, network_id: str) -> dict[IPv4Address, str]:
        """Allocated address -> owner; NotFound for an unknown network."""

    def add_address(self, network_id: str, address: IPv4Address, owner: str) -> None:
        """Conflict if the address is already allocated."""

    def remove_address(self, network_id: str, address: IPv4Address) -> None:
        """NotFound if it was not allocated."""


class DbIpamStore:
    """IPAM tables in the metadata database."""

    def __init__(self, db: MetadataDB) -> None:
        self.db = db
        db.ensure_schema(AREA, MIGRATIONS)

    def subnets(self) -> list[SubnetRecord]:
        with self.db.snapshot() as conn:
            rows = conn.execute("SELECT network_id, subnet, gateway, last FROM ipam_subnets").fetchall()
        return [
            SubnetRecord(r[0], IPv4Network(r[1]), IPv4Address(r[2]), IPv4Address(r[3]) if r[3] else None)
            for r in rows
        ]

    def add_subnet(self, record: SubnetRecord) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO ipam_subnets(network_id, subnet, gateway, last) VALUES (?, ?, ?, ?)",
                    (record.network_id, str(record.subnet), str(record.gateway),
                     str(record.last) if record.last else None),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"subnet {record.subnet} or network {record.network_id} already allocated") from exc

    def remove_subnet(self, network_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM ipam_subnets WHERE network_id = ?", (network_id,))

    def addresses(self, network_id: str) -> dict[IPv4Address, str]:
        with self.db.snapshot() as conn:
            self._require(conn, network_id)
            rows = conn.execute(
                "SELECT address, owner FROM ipam_addresses WHERE network_id = ?", (network_id,)
            ).fetchall()
        return {IPv4Address(r[0]): str(r[1]) for r in rows}

    def add_address(self, network_id: str, address: IPv4Address, owner: str) -> None:
        try:
            with self.db.transaction() as conn:
                self._require(conn, network_id)
                conn.execute(
                    "INSERT INTO ipam_addresses(network_id, address, owner) VALUES (?, ?, ?)",
                    (network_id, str(address), owner),
                )
                conn.execute("UPDATE ipam_subnets SET last = ? WHERE network_id = ?", (str(address), network_id))
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"address {address} is already in use") from exc

    def remove_address(self, network_id: str, address: IPv4Address) -> None:
        with self.db.transaction() as conn:
            gone = conn.execute(
                "DELETE FROM ipam_addresses WHERE network_id = ? AND address = ?", (network_id, str(address))
            ).rowcount
        if not gone:
            raise NotFound(f"address {address} is not allocated in network {network_id}")

    @staticmethod
    def _require(conn: sqlite3.Connection, network_id: str) -> None:
        if conn.execute("SELECT 1 FROM ipam_subnets WHERE network_id = ?", (network_id,)).fetchone() is None:
            raise NotFound(f"network {network_id} has no subnet")


class JsonIpamStore:
    """The same records in one JSON file, rewritten atomically (temp file + fsync + rename) on every change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._subnets: dict[str, SubnetRecord] = {}
        self._addresses: dict[str, dict[IPv4Address, str]] = {}
        if self.path.exists():
            self._load(json.loads(self.path.read_text()))

    def _load(self, doc: dict[str, Any]) -> None:
        for network_id, entry in doc.get("subnets", {}).items():
            last = entry.get("last")
            self._subnets[network_id] = SubnetRecord(
                network_id, IPv4Network(entry["subnet"]), IPv4Address(entry["gateway"]),
                IPv4Address(last) if last else None,
            )
            self._addresses[network_id] = {IPv4Address(a): o for a, o in entry.get("addresses", {}).items()}

    def _save(self) -> None:
        doc = {
            "subnets": {
                nid: {
                    "subnet": str(rec.subnet),
                    "gateway": str(rec.gateway),
                    "last": str(rec.last) if rec.last else None,
                    "addresses": {str(a): o for a, o in sorted(self._addresses[nid].items())},
                }
                for nid, rec in sorted(self._subnets.items())
            }
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ipam-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(doc, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def subnets(self) -> list[SubnetRecord]:
        with self._lock:
            return list(self._subnets.values())

    def add_subnet(self, record: SubnetRecord) -> None:
        with self._lock:
            if record.network_id in self._subnets or any(r.subnet == record.subnet for r in self._subnets.values()):
                raise Conflict(f"subnet {record.subnet} or network {record.network_id} already allocated")
            self._subnets[record.network_id] = record
            self._addresses[record.network_id] = {}
            self._save()

    def remove_subnet(self, network_id: str) -> None:
        with self._lock:
            if self._subnets.pop(network_id, None) is not None:
                del self._addresses[network_id]
                self._save()

    def addresses(self, network_id: str) -> dict[IPv4Address, str]:
        with self._lock:
            return dict(self._require(network_id))

    def add_address(self, network_id: str, address: IPv4Address, owner: str) -> None:
        with self._lock:
            taken = self._require(network_id)
            if address in taken:
                raise Conflict(f"address {address} is already in use")
            taken[address] = owner
            self._subnets[network_id] = replace(self._subnets[network_id], last=address)
            self._save()

    def remove_address(self, network_id: str, address: IPv4Address) -> None:
        with self._lock:
            if self._require(network_id).pop(address, None) is None:
                raise NotFound(f"address {address} is not allocated in network {network_id}")
            self._save()

    def _require(self, network_id: str) -> dict[IPv4Address, str]:
        if network_id not in self._addresses:
            raise NotFound(f"network {network_id} has no subnet")
        return self._addresses[network_id]

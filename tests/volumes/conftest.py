"""Fixtures for the volume tests: a private data root and database, every mount undone at teardown."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.snapshots.mounts import unmount_all_under
from engine.store import MetadataDB
from engine.volumes import VolumeService


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A berthtest- dir under this run's tmp root; teardown unmounts below it (lazily if busy), then deletes it."""
    path = Path(tempfile.mkdtemp(prefix="berthtest-", dir=tmp_path))
    try:
        yield path
    finally:
        unmount_all_under(path)
        shutil.rmtree(path)


@pytest.fixture
def data_root(work: Path) -> Path:
    root = work / "data-root"
    root.mkdir()
    return root


@pytest.fixture
def db(data_root: Path) -> Iterator[MetadataDB]:
    database = MetadataDB.in_data_root(data_root)
    yield database
    database.close()


@pytest.fixture
def service(db: MetadataDB, data_root: Path) -> VolumeService:
    return VolumeService(db, data_root)


def fstype_at(path: Path) -> str | None:
    """The filesystem type mounted exactly at ``path`` (the last, i.e. topmost, entry), or None."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == str(path):
                found = fields[sep + 1]
    return found


TMPFS_OPTS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0750"}

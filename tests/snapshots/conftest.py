"""Fixtures for the snapshot tests: a berthtest- work dir with a sentinel beside the target."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.snapshots.mounts import unmount_all_under
from tests.snapshots.helpers import host_etc_state, tree_state


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A private temp dir (prefix berthtest-) under which every test mounts and writes.

    It sits in pytest's tmp_path, inside this run's /tmp/berthtest-<tag>/, so
    the session's cleanup sweep also finds it after a crash.  Teardown
    unmounts anything a test left mounted below it (lazily if busy), then
    deletes it.
    """
    path = Path(tempfile.mkdtemp(prefix="berthtest-", dir=tmp_path))
    try:
        yield path
    finally:
        unmount_all_under(path)
        shutil.rmtree(path)


@pytest.fixture
def sentinel(work: Path) -> Iterator[Path]:
    """A directory next to the target; the test fails if anything in it (or in /etc) changes."""
    s = work / "sentinel"
    (s / "sub").mkdir(parents=True)
    (s / "secret").write_text("do not touch\n")
    (s / "sub" / "file").write_text("nested\n")
    os.symlink("secret", s / "link")
    before, etc_before = tree_state(s), host_etc_state()
    yield s
    assert tree_state(s) == before, "a layer wrote outside its target"
    assert host_etc_state() == etc_before, "a layer touched the host's /etc"


@pytest.fixture
def target(work: Path, sentinel: Path) -> Path:
    t = work / "target"
    t.mkdir()
    return t

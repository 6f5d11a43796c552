"""Volumes through berthd with the docker CLI: named, read-only, in use, copy-up, binds, tmpfs, anonymous."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import RunningDaemon, berthd_with_images
from tests.api.test_containers import docker_cli

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def engine(run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_images(run_tag, "busybox") as daemon:
        yield daemon


def test_named_volume_persists_and_can_be_read_only(engine: RunningDaemon) -> None:
    assert docker_cli(engine, "run", "--rm", "-v", "keep:/data", "busybox", "sh", "-c",
                      "echo persisted > /data/f").returncode == 0
    out = docker_cli(engine, "run", "--rm", "-v", "keep:/data:ro", "busybox", "sh", "-c",
                     "cat /data/f; touch /data/g 2>/dev/null || echo read-only")
    assert out.stdout == "persisted\nread-only\n"
    doc = json.loads(docker_cli(engine, "volume", "inspect", "keep").stdout)[0]
    assert doc["Driver"] == "local" and Path(doc["Mountpoint"], "f").read_text() == "persisted\n"
    assert docker_cli(engine, "volume", "rm", "keep").returncode == 0


def test_a_volume_in_use_cannot_be_removed(engine: RunningDaemon) -> None:
    cid = docker_cli(engine, "run", "-d", "-v", "busy:/data", "busybox", "sleep", "300").stdout.strip()
    refused = docker_cli(engine, "volume", "rm", "busy")
    assert refused.returncode == 1
    assert f"remove busy: volume is in use - [{cid}]" in refused.stderr
    docker_cli(engine, "rm", "-f", cid)
    assert docker_cli(engine, "volume", "rm", "busy").returncode == 0


def test_empty_volume_is_populated_from_the_image(engine: RunningDaemon) -> None:
    docker_cli(engine, "run", "--rm", "-v", "etc-copy:/etc", "busybox", "true")
    listing = docker_cli(engine, "run", "--rm", "-v", "etc-copy:/x", "busybox", "ls", "/x").stdout.split()
    assert {"passwd", "group"} <= set(listing)
    docker_cli(engine, "volume", "rm", "etc-copy")


def test_bind_mount_and_tmpfs(engine: RunningDaemon, tmp_path: Path) -> None:
    (tmp_path / "h").write_text("from the host\n")
    out = docker_cli(engine, "run", "--rm", "-v", f"{tmp_path}:/h", "busybox", "sh", "-c",
                     "cat /h/h; echo from-container > /h/c")
    assert out.stdout == "from the host\n"
    assert (tmp_path / "c").read_text() == "from-container\n"
    mounted = docker_cli(engine, "run", "--rm", "--tmpfs", "/run:size=1m", "busybox", "grep", " /run ", "/proc/mounts")
    assert mounted.stdout.startswith("tmpfs /run tmpfs") and "size=1024k" in mounted.stdout


def test_anonymous_volume_goes_with_rm_v(engine: RunningDaemon) -> None:
    before = set(docker_cli(engine, "volume", "ls", "-q").stdout.split())
    docker_cli(engine, "create", "--name", "anon", "-v", "/anon", "busybox", "true")
    mounts = json.loads(docker_cli(engine, "inspect", "-f", "{{json .Mounts}}", "anon").stdout)
    assert [(m["Type"], m["Destination"]) for m in mounts] == [("volume", "/anon")]
    created = set(docker_cli(engine, "volume", "ls", "-q").stdout.split()) - before
    assert created == {mounts[0]["Name"]}
    assert docker_cli(engine, "rm", "-v", "anon").returncode == 0
    assert set(docker_cli(engine, "volume", "ls", "-q").stdout.split()) == before


def test_bad_volume_specs_are_400s(engine: RunningDaemon) -> None:
    out = docker_cli(engine, "run", "--rm", "-v", "a:b:c:d", "busybox", "true")
    assert out.returncode != 0 and "invalid volume specification" in out.stderr
    out = docker_cli(engine, "volume", "create", "bad name")
    assert out.returncode != 0 and "includes invalid characters" in out.stderr

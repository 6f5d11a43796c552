"""Images go back and forth between the reference dockerd and berthd and keep their ID:
through a real registry (push on one side, pull on the other) and through archives
(`docker save` on one side, `load` on the other)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import RunningDaemon
from tests.api.test_containers import docker_cli
from tests.api.test_push import berthd_with_busybox
from tests.cli.conftest import seed_archive
from tests.fixtures.dockerd import ReferenceDockerd
from tests.fixtures.registry import LocalRegistry

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_registry, pytest.mark.needs_dockerd]


@pytest.fixture(scope="module")
def daemon(seeded_registry: LocalRegistry, run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_busybox(run_tag, seeded_registry) as running:
        yield running


def _berth_id(daemon: RunningDaemon, name: str) -> str:
    out = docker_cli(daemon, "image", "inspect", "--format", "{{.Id}}", name)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _dockerd_id(dockerd: ReferenceDockerd, name: str) -> str:
    return dockerd.docker("image", "inspect", "--format", "{{.Id}}", name).stdout.decode().strip()


def test_dockerd_pushes_berth_pulls_the_same_id(reference_dockerd: ReferenceDockerd, daemon: RunningDaemon,
                                                make_registry: object, run_tag: str) -> None:
    target = make_registry()  # type: ignore[operator]
    name = f"{target.host}/{run_tag}/from-dockerd:v1"
    reference_dockerd.docker("load", "-i", str(seed_archive("busybox")))
    reference_dockerd.docker("tag", "busybox:latest", name)
    try:
        reference_dockerd.docker("push", name)
        pulled = docker_cli(daemon, "pull", name)
        assert pulled.returncode == 0, pulled.stderr
        assert _berth_id(daemon, name) == _dockerd_id(reference_dockerd, name)
        run = docker_cli(daemon, "run", "--rm", name, "echo", "pushed by dockerd")
        assert run.stdout == "pushed by dockerd\n", run.stderr
    finally:
        reference_dockerd.docker("rmi", name, check=False)


def test_berth_pushes_dockerd_pulls_the_same_id(reference_dockerd: ReferenceDockerd, daemon: RunningDaemon,
                                                make_registry: object, run_tag: str) -> None:
    target = make_registry()  # type: ignore[operator]
    name = f"{target.host}/{run_tag}/from-berth:v1"
    assert docker_cli(daemon, "tag", "busybox", name).returncode == 0
    pushed = docker_cli(daemon, "push", name)
    assert pushed.returncode == 0, pushed.stderr
    try:
        reference_dockerd.docker("pull", name)
        assert _dockerd_id(reference_dockerd, name) == _berth_id(daemon, name)
        # Both name the manifest Berth pushed by the same digest.
        digests = json.loads(reference_dockerd.docker("image", "inspect", name).stdout)[0]["RepoDigests"]
        assert digests[0] in json.loads(docker_cli(daemon, "image", "inspect", name).stdout)[0]["RepoDigests"]
    finally:
        reference_dockerd.docker("rmi", name, check=False)


def test_docker_save_loads_into_berth_and_back(reference_dockerd: ReferenceDockerd, daemon: RunningDaemon,
                                               tmp_path: Path, run_tag: str) -> None:
    # dockerd → berthd
    reference_dockerd.docker("load", "-i", str(seed_archive("hello-world")))
    name = f"{run_tag}/hello-roundtrip:v1"
    reference_dockerd.docker("tag", "hello-world:latest", name)
    from_dockerd = tmp_path / "from-dockerd.tar"
    reference_dockerd.docker("save", "-o", str(from_dockerd), name)
    try:
        loaded = docker_cli(daemon, "load", "-i", str(from_dockerd))
        assert loaded.returncode == 0, loaded.stderr
        assert f"Loaded image: {name}" in loaded.stdout
        assert _berth_id(daemon, name) == _dockerd_id(reference_dockerd, name)
    finally:
        reference_dockerd.docker("rmi", name, check=False)
    # berthd → dockerd (the image dockerd just dropped comes back with the same ID)
    from_berth = tmp_path / "from-berth.tar"
    with open(from_berth, "wb") as out:
        saved = subprocess.run(["docker", "save", name], env=daemon.env(), stdout=out, stderr=subprocess.PIPE,
                               timeout=120)
    assert saved.returncode == 0, saved.stderr
    try:
        output = reference_dockerd.docker("load", "-i", str(from_berth)).stdout.decode()
        assert f"Loaded image: {name}" in output
        assert _dockerd_id(reference_dockerd, name) == _berth_id(daemon, name)
        run = reference_dockerd.docker("run", "--rm", "--network", "none", name).stdout.decode()
        assert "Hello" in run
    finally:
        reference_dockerd.docker("rmi", name, check=False)

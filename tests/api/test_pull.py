"""`docker pull` through berthd from a real local registry: by host name, and via a docker.io mirror."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.api.conftest import RunningDaemon
from tests.api.test_containers import docker_cli
from tests.api.test_push import registry_berthd
from tests.fixtures.registry import LocalRegistry

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_registry]


@pytest.fixture(scope="module")
def mirrored(seeded_registry: LocalRegistry, run_tag: str) -> Iterator[RunningDaemon]:
    with registry_berthd(run_tag, seeded_registry) as daemon:
        yield daemon


def test_pull_from_a_mirror_then_run(mirrored: RunningDaemon) -> None:
    out = docker_cli(mirrored, "pull", "busybox")
    assert out.returncode == 0, out.stderr
    assert "Status: Downloaded newer image for busybox:latest" in out.stdout
    assert "Digest: sha256:" in out.stdout
    inspect = json.loads(docker_cli(mirrored, "image", "inspect", "busybox").stdout)[0]
    assert inspect["RepoTags"] == ["busybox:latest"]
    assert inspect["RepoDigests"][0].startswith("busybox@sha256:")
    run = docker_cli(mirrored, "run", "--rm", "busybox", "echo", "pulled and ran")
    assert run.stdout == "pulled and ran\n", run.stderr


def test_run_pulls_a_missing_image(mirrored: RunningDaemon) -> None:
    docker_cli(mirrored, "rmi", "-f", "hello-world")
    out = docker_cli(mirrored, "run", "--rm", "hello-world")
    assert out.returncode == 0, out.stderr
    assert "Unable to find image 'hello-world:latest' locally" in out.stderr
    assert "Hello from Berth!" in out.stdout


def test_pull_by_registry_host(mirrored: RunningDaemon, seeded_registry: LocalRegistry) -> None:
    name = f"{seeded_registry.host}/library/busybox:latest"
    out = docker_cli(mirrored, "pull", name)
    assert out.returncode == 0, out.stderr
    assert name in docker_cli(mirrored, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()


def test_pull_of_a_missing_image_is_404(mirrored: RunningDaemon, seeded_registry: LocalRegistry) -> None:
    out = docker_cli(mirrored, "pull", f"{seeded_registry.host}/library/nosuchimage:latest")
    assert out.returncode == 1
    assert "not found" in out.stderr or "does not exist" in out.stderr
    assert mirrored.proc.poll() is None


def test_pull_by_digest(mirrored: RunningDaemon, seeded_registry: LocalRegistry) -> None:
    from tests.api.test_push import skopeo_inspect

    digest = skopeo_inspect(seeded_registry, "library/hello-world:latest")["Digest"]
    name = f"{seeded_registry.host}/library/hello-world@{digest}"
    out = docker_cli(mirrored, "pull", name)
    assert out.returncode == 0, out.stderr
    assert f"Digest: {digest}" in out.stdout
    image = json.loads(docker_cli(mirrored, "image", "inspect", name).stdout)[0]
    assert name in image["RepoDigests"]
    assert not [tag for tag in image["RepoTags"] if tag.startswith(seeded_registry.host)]

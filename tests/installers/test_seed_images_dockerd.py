"""The seed archives load into the real (Debian) dockerd and their containers run."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator

import pytest

from tests.fixtures.dockerd import ReferenceDockerd, docker_load, image_inspect
from tests.installers.conftest import SEED_ARCHIVES, SeedBuilds

pytestmark = [pytest.mark.needs_dockerd, pytest.mark.slow]

# The reference daemon has no bridge (it must not touch the host's firewall).
RUN = ("run", "--rm", "--network", "none")


@pytest.fixture(scope="module")
def loaded(seed_builds: SeedBuilds, reference_dockerd: ReferenceDockerd) -> Iterator[dict[str, list[str]]]:
    """`docker load` of each archive; maps the archive name to the tags dockerd reported."""
    reported = {name: docker_load(reference_dockerd, seed_builds.archive(name)) for name in SEED_ARCHIVES}
    yield reported
    reference_dockerd.docker("image", "rm", *SEED_ARCHIVES.values(), check=False)


@pytest.mark.parametrize("name", sorted(SEED_ARCHIVES))
def test_docker_load_tags_the_image_with_the_config_digest_as_id(
    seed_builds: SeedBuilds, reference_dockerd: ReferenceDockerd, loaded: dict[str, list[str]], name: str
) -> None:
    assert loaded[name] == [SEED_ARCHIVES[name]]
    with tarfile.open(seed_builds.archive(name)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    (inspected,) = image_inspect(reference_dockerd, [SEED_ARCHIVES[name]])
    assert inspected["Id"] == "sha256:" + manifest[0]["Config"].rsplit("/", 1)[1]
    assert inspected["Architecture"] == "amd64" and inspected["Os"] == "linux"


def test_busybox_runs_a_command(reference_dockerd: ReferenceDockerd, loaded: dict[str, list[str]]) -> None:
    result = reference_dockerd.docker(*RUN, "busybox", "echo", "ok")
    assert result.stdout == b"ok\n"


def test_busybox_default_command_is_a_shell_with_applets_on_path(
    reference_dockerd: ReferenceDockerd, loaded: dict[str, list[str]]
) -> None:
    script = b"echo $((6 * 7)); which wget ifconfig; id -un; ls -ld /tmp\n"
    lines = reference_dockerd.docker(*RUN, "-i", "busybox", input=script).stdout.decode().splitlines()
    assert lines[:4] == ["42", "/usr/bin/wget", "/sbin/ifconfig", "root"]
    assert lines[4].startswith("drwxrwxrwt")


def test_hello_world_prints_the_berth_greeting(
    reference_dockerd: ReferenceDockerd, loaded: dict[str, list[str]]
) -> None:
    output = reference_dockerd.docker(*RUN, "hello-world").stdout.decode()
    assert "Hello from Berth!" in output
    assert "berth run -it --rm busybox sh" in output


def test_debian_runs_and_reports_bookworm(reference_dockerd: ReferenceDockerd, loaded: dict[str, list[str]]) -> None:
    version = reference_dockerd.docker(*RUN, "debian:bookworm-slim", "cat", "/etc/debian_version").stdout
    assert version.decode().startswith("12.")


def test_debian_default_command_is_bash_and_dpkg_knows_its_packages(
    reference_dockerd: ReferenceDockerd, loaded: dict[str, list[str]]
) -> None:
    script = b"echo \"$BASH_VERSION\"; dpkg-query -W -f='${Status}\\n' apt\n"
    lines = reference_dockerd.docker(*RUN, "-i", "debian:bookworm-slim", input=script).stdout.decode().splitlines()
    assert lines[0].startswith("5.")
    assert lines[1] == "install ok installed"

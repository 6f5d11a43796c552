"""The seed image archives: reproducible, valid `docker save` archives, cached by their inputs."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from installers.images.__main__ import main as images_main
from installers.images.build import build_images
from installers.images.busybox import BusyboxRecipe
from installers.images.debian_slim import DebianSlimRecipe
from installers.images.errors import BuildStepFailed
from installers.images.hello_world import HelloWorldRecipe
from installers.images.recipe import Recipe
from tests.fixtures import capabilities
from tests.installers import oci_schemas
from tests.installers.conftest import SEED_ARCHIVES, SeedBuilds

pytestmark = pytest.mark.slow


def _read_archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _blob(members: dict[str, bytes], digest: str) -> bytes:
    return members["blobs/sha256/" + digest.split(":", 1)[1]]


@pytest.mark.parametrize("name", sorted(SEED_ARCHIVES))
def test_two_forced_builds_are_byte_identical(seed_builds: SeedBuilds, name: str) -> None:
    first, second = seed_builds.first[name], seed_builds.second[name]
    assert first.rebuilt and second.rebuilt
    assert first.archive != second.archive
    assert first.archive.read_bytes() == second.archive.read_bytes()


@pytest.mark.parametrize("name", sorted(SEED_ARCHIVES))
def test_archive_is_a_valid_docker_save_archive(seed_builds: SeedBuilds, name: str) -> None:
    members = _read_archive(seed_builds.archive(name))
    for member, data in members.items():
        if member.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == member.rsplit("/", 1)[1], member

    manifest = json.loads(members["manifest.json"])
    assert len(manifest) == 1
    assert set(manifest[0]) == {"Config", "RepoTags", "Layers"}
    assert manifest[0]["RepoTags"] == [SEED_ARCHIVES[name]]
    assert all(path in members for path in [manifest[0]["Config"], *manifest[0]["Layers"]])

    assert oci_schemas.errors("layout", json.loads(members["oci-layout"])) == []
    index = json.loads(members["index.json"])
    assert oci_schemas.errors("index", index) == []
    (descriptor,) = index["manifests"]
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == SEED_ARCHIVES[name].split(":")[1]
    oci_manifest = json.loads(_blob(members, descriptor["digest"]))
    assert oci_schemas.errors("manifest", oci_manifest) == []
    assert descriptor["size"] == len(_blob(members, descriptor["digest"]))

    config_bytes = _blob(members, oci_manifest["config"]["digest"])
    config: dict[str, Any] = json.loads(config_bytes)
    assert oci_schemas.errors("config", config) == []
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    datetime.fromisoformat(config["created"].replace("Z", "+00:00"))  # RFC 3339, not checked by the schema
    assert len(config["history"]) == 1
    layer_digests = [layer["digest"] for layer in oci_manifest["layers"]]
    assert config["rootfs"] == {"type": "layers", "diff_ids": layer_digests}
    assert {layer["mediaType"] for layer in oci_manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
    assert manifest[0]["Layers"] == ["blobs/sha256/" + d.split(":")[1] for d in layer_digests]
    assert json.loads(members["repositories"]) == {
        SEED_ARCHIVES[name].split(":")[0]: {SEED_ARCHIVES[name].split(":")[1]: layer_digests[-1].split(":")[1]}
    }


def _layer_members(archive: Path) -> dict[str, tarfile.TarInfo]:
    members = _read_archive(archive)
    (layer_path,) = json.loads(members["manifest.json"])[0]["Layers"]
    layer_file = archive.parent / "layer-under-test.tar"
    layer_file.write_bytes(members[layer_path])
    try:
        with tarfile.open(layer_file) as tar:
            return {m.name: m for m in tar.getmembers()}
    finally:
        layer_file.unlink()


def test_busybox_links_every_applet_to_the_absolute_binary(seed_builds: SeedBuilds) -> None:
    layer = _layer_members(seed_builds.archive("busybox"))
    assert layer["bin/busybox"].isreg() and layer["bin/busybox"].mode == 0o755
    for applet in ("bin/sh", "bin/ls", "bin/echo", "usr/bin/wget", "sbin/ifconfig"):
        assert layer[applet].issym() and layer[applet].linkname == "/bin/busybox", applet
    assert sum(1 for m in layer.values() if m.issym()) > 250
    assert {"etc/passwd", "etc/group"} <= set(layer)
    assert layer["tmp"].mode == 0o1777
    assert {(m.uid, m.gid) for m in layer.values()} == {(0, 0)}


def test_hello_world_is_one_small_static_binary(seed_builds: SeedBuilds) -> None:
    layer = _layer_members(seed_builds.archive("hello-world"))
    assert list(layer) == ["hello"]
    assert layer["hello"].size < 64 * 1024


def test_debian_slim_has_no_docs_man_pages_or_device_nodes(seed_builds: SeedBuilds) -> None:
    layer = _layer_members(seed_builds.archive("debian-bookworm-slim"))
    names = set(layer)
    assert "etc/debian_version" in names
    assert not [n for n in names if n.startswith("usr/share/man/") and not layer[n].isdir()]
    # dpkg's path filters drop files; the few symlinks packages ship there stay (as in Docker's image).
    docs = [n for n in names if n.startswith("usr/share/doc/") and layer[n].isreg()]
    assert docs and all(n.endswith("/copyright") for n in docs)
    assert [n for n in names if n.startswith("dev/")] == []
    # /usr merged by mmdebstrap's hook, not by the usrmerge package (which drags in perl).
    assert layer["bin"].issym() and layer["bin"].linkname == "usr/bin"
    assert "var/lib/dpkg/info/usrmerge.list" not in names
    # Owners from the packages survive (shadow's group, not everything root).
    assert layer["etc/shadow"].gid == 42


def test_unchanged_inputs_are_not_rebuilt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "images"
    recipes: list[Recipe] = [BusyboxRecipe(), HelloWorldRecipe()]
    first = build_images(out, recipes)
    assert [r.rebuilt for r in first] == [True, True]
    before = {r.name: r.archive.stat().st_mtime_ns for r in first}

    assert images_main(["build", "--out", str(out), "--only", "busybox", "--only", "hello-world"]) == 0
    assert capsys.readouterr().out.splitlines() == ["busybox: up to date", "hello-world: up to date"]
    assert {r.name: r.archive.stat().st_mtime_ns for r in first} == before

    forced = build_images(out, [HelloWorldRecipe()], force=True)
    assert forced[0].rebuilt and forced[0].digest == first[1].digest


def test_a_damaged_archive_is_rebuilt(tmp_path: Path) -> None:
    out = tmp_path / "images"
    (built,) = build_images(out, [HelloWorldRecipe()])
    built.archive.write_bytes(built.archive.read_bytes()[:-1024])
    (again,) = build_images(out, [HelloWorldRecipe()])
    assert again.rebuilt and again.digest == built.digest


def _unreachable_mirror_apt_dir(tmp_path: Path) -> Path:
    """An apt configuration whose mirror is a loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    apt_dir = tmp_path / "apt"
    apt_dir.mkdir()
    (apt_dir / "sources.list").write_text(f"deb http://127.0.0.1:{port}/debian bookworm main\n")
    return apt_dir


def test_unreachable_mirror_without_an_archive_fails_clearly(tmp_path: Path) -> None:
    recipe = DebianSlimRecipe(apt_dir=_unreachable_mirror_apt_dir(tmp_path))
    with pytest.raises(BuildStepFailed, match="InRelease"):
        build_images(tmp_path / "images", [recipe])


def test_unreachable_mirror_keeps_a_previously_built_archive(seed_builds: SeedBuilds, tmp_path: Path) -> None:
    built = seed_builds.first["debian-bookworm-slim"]
    out = tmp_path / "images"
    (out / ".cache").mkdir(parents=True)
    shutil.copyfile(built.archive, out / built.archive.name)
    stamp = Path(".cache") / "debian-bookworm-slim.json"
    shutil.copyfile(built.archive.parent / stamp, out / stamp)

    (kept,) = build_images(out, [DebianSlimRecipe(apt_dir=_unreachable_mirror_apt_dir(tmp_path))])
    assert not kept.rebuilt and kept.digest == built.digest
    assert "inputs not checked" in kept.note


def test_skopeo_reads_the_archive_as_docker_archive_and_as_oci_archive(seed_builds: SeedBuilds) -> None:
    """An independent reader of both views in the archive (containers/image)."""
    if not capabilities.skopeo().available:
        pytest.skip(capabilities.skopeo().missing)
    archive = seed_builds.archive("busybox")
    members = _read_archive(archive)
    (descriptor,) = json.loads(members["index.json"])["manifests"]
    for transport in ("docker-archive", "oci-archive"):
        result = subprocess.run(
            ["skopeo", "inspect", "--config", f"{transport}:{archive}"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["config"]["Cmd"] == ["sh"]
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci-archive:{archive}"], capture_output=True, timeout=60, check=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == descriptor["digest"]

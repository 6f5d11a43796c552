"""docker save: selection rules, round trip through load, OCI schema validity."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.images.archive_load import load
from engine.images.archive_save import save, select_images
from engine.images.errors import NotFound
from engine.images.image_store import ImageStore

from . import oci_schemas
from .archive_factory import docker_save_members, write_tar
from .image_factory import layer_tar
from .test_archive_load import SEED_ARCHIVES

LAYER_A = layer_tar({"bin/a": b"a" * 100})
LAYER_B = layer_tar({"etc/b": b"b" * 50})


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[ImageStore, ImageStore]]:
    first, second = ImageStore(tmp_path / "berthtest-one"), ImageStore(tmp_path / "berthtest-two")
    yield first, second
    first.close()
    second.close()


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _json(members: dict[str, bytes], name: str) -> Any:
    return json.loads(members[name])


def test_round_trip_keeps_id_tags_and_validates(stores: tuple[ImageStore, ImageStore], tmp_path: Path) -> None:
    first, second = stores
    members, image_id = docker_save_members([LAYER_A, LAYER_B], ["app:1", "app:2"])
    load(first, write_tar(tmp_path / "in.tar", members))
    out = io.BytesIO()
    save(first, ["app"], out)
    archive = out.getvalue()
    result = load(second, io.BytesIO(archive))
    assert sorted(result.tags) == ["app:1", "app:2"]
    assert second.get("app:1").id == image_id
    assert second.inspect("app:1")["RootFS"] == first.inspect("app:1")["RootFS"]

    saved = _members(archive)
    oci_schemas.validate("layout", _json(saved, "oci-layout"))
    index = _json(saved, "index.json")
    oci_schemas.validate("index", index)
    for descriptor in index["manifests"]:
        manifest = _json(saved, "blobs/sha256/" + descriptor["digest"][7:])
        oci_schemas.validate("manifest", manifest)
        oci_schemas.validate("config", _json(saved, "blobs/sha256/" + manifest["config"]["digest"][7:]))


@pytest.mark.skipif(not SEED_ARCHIVES, reason="no seed archives: run `make images` (build/images/*.tar)")
def test_seed_round_trip(stores: tuple[ImageStore, ImageStore]) -> None:
    first, second = stores
    loaded = load(first, SEED_ARCHIVES[0])
    out = io.BytesIO()
    save(first, loaded.tags or loaded.image_ids, out)
    again = load(second, io.BytesIO(out.getvalue()))
    assert again.image_ids == loaded.image_ids
    saved = _members(out.getvalue())
    for descriptor in _json(saved, "index.json")["manifests"]:
        oci_schemas.validate("manifest", _json(saved, "blobs/sha256/" + descriptor["digest"][7:]))


def test_compressed_layers_are_saved_as_plain_tars(stores: tuple[ImageStore, ImageStore], tmp_path: Path) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    first, second = stores
    members, _ = docker_save_members([LAYER_A], ["app:1"])
    source = write_tar(tmp_path / "in.tar", members)
    oci = tmp_path / "oci.tar"
    subprocess.run(
        ["skopeo", "copy", "-q", f"docker-archive:{source}", f"oci-archive:{oci}:app:1"],
        check=True, capture_output=True, timeout=120,
    )
    load(first, oci)
    assert first.get("app:1").layers[0].media_type.endswith("+gzip")
    out = io.BytesIO()
    save(first, ["app:1"], out)
    load(second, io.BytesIO(out.getvalue()))
    assert second.get("app:1").layers[0].blob_digest == second.get("app:1").layers[0].diff_id
    # skopeo's output is also a real docker archive for skopeo itself.
    saved = tmp_path / "saved.tar"
    saved.write_bytes(out.getvalue())
    inspect = subprocess.run(
        ["skopeo", "inspect", "--config", f"docker-archive:{saved}"],
        check=True, capture_output=True, timeout=60, text=True,
    )
    assert json.loads(inspect.stdout)["rootfs"]["diff_ids"] == second.get("app:1").diff_ids


def test_selection_rules(stores: tuple[ImageStore, ImageStore], tmp_path: Path) -> None:
    store, _ = stores
    members, image_id = docker_save_members([LAYER_A], ["app:1", "app:2", "other:x"])
    load(store, write_tar(tmp_path / "in.tar", members))
    assert select_images(store, ["app"]) == {image_id: ["app:1", "app:2"]}
    assert select_images(store, ["other:x"]) == {image_id: ["other:x"]}
    assert select_images(store, [image_id[7:19]]) == {image_id: []}
    assert select_images(store, [image_id]) == {image_id: []}
    with pytest.raises(NotFound):
        select_images(store, ["app:3"])

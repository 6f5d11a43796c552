"""Pulled images become store images: tag, RepoDigest, manifests, verified layers."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images.errors import DigestMismatch, NotFound
from engine.images.image_store import ImageStore
from engine.images.pull_record import LeasedSink, record_pull
from engine.images.reference import parse_docker_ref
from engine.images.registry import BlobSink, PulledImage, RegistryClient, RegistryHosts
from engine.images.registry.manifests import Descriptor
from tests.fixtures.registry import LocalRegistry

from .archive_factory import docker_save_members, write_tar
from .image_factory import config_json, layer_tar

LAYER_A = layer_tar({"bin/a": b"a" * 100})
LAYER_B = layer_tar({"etc/b": b"b" * 50})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    image_store = ImageStore(tmp_path / "berthtest-data")
    yield image_store
    image_store.close()


def _pulled(store: ImageStore, layers: list[bytes], diff_ids: list[str], ref: str) -> PulledImage:
    descriptors = tuple(
        Descriptor("application/vnd.oci.image.layer.v1.tar", store.content.put(layer), len(layer)) for layer in layers
    )
    config = config_json(diff_ids)
    config_desc = Descriptor("application/vnd.oci.image.config.v1+json", store.content.put(config), len(config))
    manifest = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
    return PulledImage(
        reference=parse_docker_ref(ref),
        digest=store.content.put(manifest),
        media_type="application/vnd.oci.image.manifest.v1+json",
        manifest=manifest,
        config=config_desc,
        layers=descriptors,
    )


def test_record_names_tag_and_repo_digest(store: ImageStore) -> None:
    from engine.images.digests import sha256_digest

    pulled = _pulled(store, [LAYER_A, LAYER_B], [sha256_digest(LAYER_A), sha256_digest(LAYER_B)], "reg.example/app:v1")
    record = record_pull(store, pulled)
    doc = store.inspect("reg.example/app:v1")
    assert doc["RepoTags"] == ["reg.example/app:v1"]
    assert doc["RepoDigests"] == [f"reg.example/app@{pulled.digest}"]
    assert doc["Descriptor"]["digest"] == pulled.digest
    assert store.resolve(f"reg.example/app@{pulled.digest}") == record.id
    assert record.size == 150
    assert store.gc() == []


def test_layer_not_matching_config_is_refused(store: ImageStore) -> None:
    from engine.images.digests import sha256_digest

    pulled = _pulled(store, [LAYER_A], [sha256_digest(LAYER_B)], "reg.example/app:v1")
    with pytest.raises(DigestMismatch):
        record_pull(store, pulled)
    with pytest.raises(NotFound):
        store.resolve("reg.example/app:v1")


def test_pull_from_a_real_registry_through_a_leased_sink(
    registry: LocalRegistry, store: ImageStore, tmp_path: Path
) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    members, _ = docker_save_members([LAYER_A, LAYER_B], ["app:1"])
    archive = write_tar(tmp_path / "app.tar", members)
    ref = f"{registry.host}/record/app:v1"
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false",
         f"docker-archive:{archive}", f"docker://{ref}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    async def pull_and_record() -> tuple[PulledImage, str]:
        with store.lease() as lease:
            sink: BlobSink = LeasedSink(store, lease)
            async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
                pulled = await client.pull(ref, sink)
            # gc while the pull is not yet recorded: the lease keeps every blob.
            assert store.gc() == []
            record = await asyncio.to_thread(record_pull, store, pulled)
        return pulled, record.id

    pulled, image_id = asyncio.run(pull_and_record())
    doc = store.inspect(ref)
    assert doc["Id"] == image_id
    assert doc["RepoDigests"] == [f"{registry.host}/record/app@{pulled.digest}"]
    assert len(doc["RootFS"]["Layers"]) == 2
    assert store.gc() == []

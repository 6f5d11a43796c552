"""The seed images (build/images, pushed by skopeo) pulled by their Docker Hub names
through a registry mirror, as an offline Berth would: digests match skopeo's view."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from engine.images.content_store import ContentStore
from engine.images.registry import PulledImage, RegistryClient, RegistryHosts
from engine.images.registry.manifests import compute_digest
from tests.fixtures.registry import LocalRegistry


@pytest.mark.parametrize("name", ["busybox:latest", "hello-world:latest", "debian:bookworm-slim"])
def test_seed_image_pulls_through_a_docker_io_mirror(
    seeded_registry: LocalRegistry, name: str, tmp_path: Path
) -> None:
    store = ContentStore(tmp_path / "content")

    async def go() -> PulledImage:
        hosts = RegistryHosts(mirrors=[seeded_registry.url], certs_dir=None)
        async with RegistryClient(hosts) as client:
            return await client.pull(name, store)

    pulled = asyncio.run(go())

    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{seeded_registry.host}/library/{name}"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    inspected = json.loads(result.stdout)
    assert pulled.digest == inspected["Digest"]
    assert [layer.digest for layer in pulled.layers] == inspected["Layers"]
    for digest in [pulled.config.digest, *(layer.digest for layer in pulled.layers)]:
        assert compute_digest(store.read(digest)) == digest

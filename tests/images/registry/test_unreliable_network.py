"""Retries, resumes and redirects, through a proxy that breaks the connection to a
real docker-registry in the ways networks and storage backends do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images.content_store import ContentStore
from engine.images.registry import (
    DigestMismatch,
    PullAccessDenied,
    PulledImage,
    RegistryClient,
    RegistryHosts,
    RegistryUnavailable,
)
from engine.images.registry.proxies import ProxyConfig
from tests.fixtures.registry import LocalRegistry

from .imagegen import TestImage, make_image
from .proxy import FlakyProxy


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FlakyProxy]:
    front = FlakyProxy(registry.url)
    front.start()
    yield front
    front.stop()


def _seed(registry: LocalRegistry, tmp_path: Path, repo: str, sizes: tuple[int, ...]) -> TestImage:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=sizes)

    async def go() -> None:
        async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
            await client.push(f"{registry.host}/{repo}:v1", image.manifest, image.media_type, source)

    asyncio.run(go())
    return image


def _pull(host: str, ref: str, store: ContentStore, retries: int = 3) -> PulledImage:
    async def go() -> PulledImage:
        # backoff=0: the retry logic is what is tested, not the waiting.
        async with RegistryClient(RegistryHosts(certs_dir=None), retries=retries, backoff=0) as client:
            return await client.pull(f"{host}/{ref}", store)

    return asyncio.run(go())


def test_blob_get_answered_503_is_retried(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path
) -> None:
    image = _seed(registry, tmp_path, "flaky/503", (10_000,))
    proxy.fail_blob_gets = 2
    pulled = _pull(proxy.host, "flaky/503:v1", store)
    assert pulled.digest == image.digest and all(store.has(d) for d in image.blob_digests)
    assert proxy.fail_blob_gets == 0


def test_persistent_5xx_gives_up_as_unavailable(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path
) -> None:
    _seed(registry, tmp_path, "flaky/down", (1_000,))
    proxy.fail_blob_gets = 1000
    with pytest.raises(RegistryUnavailable, match="503"):
        _pull(proxy.host, "flaky/down:v1", store, retries=2)


def test_connection_cut_mid_blob_resumes_with_range_from_the_cut(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path
) -> None:
    image = _seed(registry, tmp_path, "flaky/cut", (300_000,))
    layer = image.layers[0]
    proxy.cut_each_blob_once = True  # the config's body and the layer's

    pulled = _pull(proxy.host, "flaky/cut:v1", store)

    assert pulled.digest == image.digest
    assert compute(store, layer.digest) == layer.digest
    blob_gets = [r for r in proxy.seen if r.method == "GET" and layer.digest in r.path]
    assert len(blob_gets) == 2
    assert blob_gets[0].range is None
    assert blob_gets[1].range == f"bytes={layer.size // 2}-"


def test_blob_redirect_to_another_origin_is_followed_without_credentials(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path
) -> None:
    image = _seed(registry, tmp_path, "flaky/redirect", (20_000,))
    storage = FlakyProxy(registry.url)  # stands for the S3 bucket behind a registry
    storage.start()
    try:
        # "localhost" vs "127.0.0.1": another origin, as a storage host would be.
        proxy.redirect_blobs_to = f"http://localhost:{storage.port}"
        pulled = _pull(proxy.host, "flaky/redirect:v1", store)
    finally:
        storage.stop()
    assert pulled.digest == image.digest
    assert {r.path.rsplit("/", 1)[1] for r in storage.seen} == set(image.blob_digests)
    assert not any(r.authorization for r in storage.seen)


def test_corrupted_blob_fails_its_digest_and_nothing_is_committed(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path
) -> None:
    image = _seed(registry, tmp_path, "flaky/corrupt", (10_000,))
    proxy.corrupt_blobs = True
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        _pull(proxy.host, "flaky/corrupt:v1", store)
    assert not any(store.has(digest) for digest in image.blob_digests)
    # The bad bytes are not kept for a resume either: a clean pull starts from zero.
    proxy.corrupt_blobs = False
    assert _pull(proxy.host, "flaky/corrupt:v1", store).bytes_downloaded == sum(
        blob.size for blob in (image.config, *image.layers)
    )


@pytest.mark.parametrize("partial_bytes", ["all", "half"])
def test_bad_partial_left_by_an_earlier_pull_is_downloaded_again(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path, partial_bytes: str
) -> None:
    # A pull cancelled after writing corrupt bytes (its sibling blob failed first) keeps
    # its partial for a resume; the next pull must not fail on it forever.
    image = _seed(registry, tmp_path, "flaky/stale", (10_000,))
    for blob in (image.config, *image.layers):
        length = blob.size if partial_bytes == "all" else blob.size // 2
        writer = store.writer(blob.digest, blob.size)
        writer.write(b"\xff" * length)
        writer.abort()

    pulled = _pull(proxy.host, "flaky/stale:v1", store)

    assert pulled.digest == image.digest
    assert all(compute(store, d) == d for d in image.blob_digests)
    ranged = [r for r in proxy.seen if r.method == "GET" and "/blobs/" in r.path and r.range]
    fresh = [r for r in proxy.seen if r.method == "GET" and "/blobs/" in r.path and not r.range]
    assert {r.path.rsplit("/", 1)[1] for r in fresh} == set(image.blob_digests)
    assert len(ranged) == (0 if partial_bytes == "all" else len(image.blob_digests))


def test_manifest_not_matching_docker_content_digest_is_refused(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path
) -> None:
    image = _seed(registry, tmp_path, "flaky/tampered", (1_000,))
    proxy.pad_manifests = True
    with pytest.raises(DigestMismatch, match=f"expected {image.digest}"):
        _pull(proxy.host, "flaky/tampered:v1", store)
    with pytest.raises(DigestMismatch, match=f"expected {image.digest}"):
        _pull(proxy.host, f"flaky/tampered@{image.digest}", store)
    assert not store.has(image.digest)


def test_denied_pull_reads_like_dockers_pull_access_denied(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore
) -> None:
    proxy.deny_manifests = True
    with pytest.raises(PullAccessDenied) as caught:
        _pull(proxy.host, "flaky/private:v1", store)
    assert str(caught.value) == (
        f"pull access denied for {proxy.host}/flaky/private, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied"
    )


def test_http_proxy_carries_registry_traffic(
    registry: LocalRegistry, proxy: FlakyProxy, store: ContentStore, tmp_path: Path
) -> None:
    image = _seed(registry, tmp_path, "proxied/app", (5_000,))
    # A name that does not resolve: the pull can only succeed through the proxy, which
    # forwards every request it gets to the registry.
    host = f"registry.berthtest.invalid:{registry.port}"
    hosts = RegistryHosts(
        insecure_registries=[host], certs_dir=None, proxies=ProxyConfig(http_proxy=f"http://{proxy.host}")
    )

    async def go() -> PulledImage:
        async with RegistryClient(hosts, backoff=0) as client:
            return await client.pull(f"{host}/proxied/app:v1", store)

    assert asyncio.run(go()).digest == image.digest
    assert any(r.path == "/v2/proxied/app/manifests/v1" for r in proxy.seen)


def compute(store: ContentStore, digest: str) -> str:
    from engine.images.registry.manifests import compute_digest

    return compute_digest(store.read(digest))

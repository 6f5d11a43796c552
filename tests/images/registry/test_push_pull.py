"""Push and pull against a real docker-registry: digests survive the round trip,
skopeo (an independent client) sees what we pushed, and we pull what skopeo pushed."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from engine.images.content_store import ContentStore
from engine.images.registry import (
    BlobSink,
    BlobSource,
    DistributionInspect,
    NotFound,
    Platform,
    PlatformNotFound,
    ProgressEvent,
    PulledImage,
    PushResult,
    RegistryClient,
    RegistryHosts,
    RegistryUnavailable,
    mediatypes,
    progress,
)
from engine.images.registry.manifests import compute_digest
from tests.fixtures.registry import LocalRegistry

from .imagegen import TestImage, make_image, make_index, write_oci_layout

# The real ContentStore is what the registry client is written against.
_SINK: type[BlobSink] = ContentStore  # type: ignore[type-abstract]
_SOURCE: type[BlobSource] = ContentStore  # type: ignore[type-abstract]


def _pull(registry: LocalRegistry, ref: str, store: ContentStore, **kwargs: object) -> PulledImage:
    async def go() -> PulledImage:
        async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
            return await client.pull(f"{registry.host}/{ref}", store, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def _push(registry: LocalRegistry, ref: str, image: TestImage, store: ContentStore, **kwargs: object) -> PushResult:
    async def go() -> PushResult:
        async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
            return await client.push(
                f"{registry.host}/{ref}", image.manifest, image.media_type, store, **kwargs  # type: ignore[arg-type]
            )

    return asyncio.run(go())


def _skopeo_inspect(registry: LocalRegistry, ref: str, raw: bool = False) -> dict[str, object]:
    argv = ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/{ref}"]
    if raw:
        argv.insert(2, "--raw")
    result = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _skopeo_copy_layout(registry: LocalRegistry, layout: Path, ref: str) -> None:
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
         f"oci:{layout}", f"docker://{registry.host}/{ref}"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip


def test_pull_of_skopeo_pushed_image_verifies_manifest_and_every_blob(
    registry: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(300_000, 50_000, 1_000))
    _skopeo_copy_layout(registry, write_oci_layout(source, image, tmp_path / "layout"), "pull/skopeo:v1")
    events: list[ProgressEvent] = []

    pulled = _pull(registry, "pull/skopeo:v1", store, progress=events.append)

    assert pulled.digest == image.digest
    assert pulled.manifest == image.manifest
    assert pulled.config.digest == image.config.digest
    assert [layer.digest for layer in pulled.layers] == [layer.digest for layer in image.layers]
    assert pulled.index_digest is None
    for digest in [*image.blob_digests, image.digest]:
        assert store.has(digest)
        assert compute_digest(store.read(digest)) == digest
    assert pulled.bytes_downloaded == sum(layer.size for layer in image.layers) + image.config.size
    statuses = {(event.id, event.status) for event in events}
    for layer in image.layers:
        short = layer.digest.split(":")[1][:12]
        for status in (progress.PULLING_FS_LAYER, progress.DOWNLOADING, progress.VERIFYING_CHECKSUM,
                       progress.DOWNLOAD_COMPLETE):  # fmt: skip
            assert (short, status) in statuses
    last = [e for e in events if e.id == image.layers[0].digest.split(":")[1][:12] and e.current is not None][-1]
    assert (last.current, last.total) == (image.layers[0].size, image.layers[0].size)


def test_second_pull_reports_already_exists_and_downloads_nothing(
    registry: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    image = make_image(ContentStore(tmp_path / "source"))
    _push(registry, "pull/again:v1", image, ContentStore(tmp_path / "source"))
    _pull(registry, "pull/again:v1", store)
    events: list[ProgressEvent] = []
    pulled = _pull(registry, "pull/again:v1", store, progress=events.append)
    assert pulled.bytes_downloaded == 0
    assert {e.status for e in events} == {progress.ALREADY_EXISTS}


def test_missing_tag_is_not_found_with_dockers_wording(registry: LocalRegistry, store: ContentStore) -> None:
    with pytest.raises(NotFound) as caught:
        _pull(registry, "pull/absent:nosuchtag", store)
    assert str(caught.value) == (
        f"manifest for {registry.host}/pull/absent:nosuchtag not found: manifest unknown: manifest unknown"
    )


def test_push_then_pull_gives_identical_digests_and_skopeo_agrees(
    registry: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(100_000, 2_000), docker_types=True)

    result = _push(registry, "push/roundtrip:v1", image, source)

    assert result.digest == image.digest
    assert sorted(result.uploaded) == sorted(image.blob_digests)
    inspected = _skopeo_inspect(registry, "push/roundtrip:v1")
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == [layer.digest for layer in image.layers]
    assert _skopeo_inspect(registry, "push/roundtrip:v1", raw=True) == json.loads(image.manifest)
    pulled = _pull(registry, "push/roundtrip:v1", store)
    assert (pulled.digest, pulled.media_type) == (image.digest, image.media_type)
    for digest in image.blob_digests:
        assert store.read(digest) == source.read(digest)


def test_push_of_existing_blobs_skips_them(registry: LocalRegistry, tmp_path: Path) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source)
    _push(registry, "push/twice:v1", image, source)
    again = _push(registry, "push/twice:v2", image, source)
    assert again.uploaded == [] and sorted(again.existing) == sorted(image.blob_digests)


def test_cross_repository_mount_is_used_for_a_blob_of_another_repository(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    base = make_image(source, layer_sizes=(20_000,))
    _push(registry, "mount/base:v1", base, source)
    derived = make_image(source, layer_sizes=(3_000,), shared_layers=base.layers)

    result = _push(registry, "mount/derived:v1", derived, source, mount_from=("mount/base",))

    assert result.mounted == [base.layers[0].digest]
    assert sorted(result.uploaded) == sorted([derived.config.digest, derived.layers[1].digest])
    assert _skopeo_inspect(registry, "mount/derived:v1")["Layers"] == [layer.digest for layer in derived.layers]


def test_chunked_upload_pushes_a_blob_in_several_patches(registry: LocalRegistry, tmp_path: Path) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(200_000,))
    events: list[ProgressEvent] = []

    result = _push(registry, "push/chunked:v1", image, source, chunk_size=64 * 1024, progress=events.append)

    layer = image.layers[0]
    pushing = [e.current for e in events if e.status == progress.PUSHING and e.id == layer.digest[7:19]]
    assert len(pushing) == -(-layer.size // (64 * 1024)) > 1  # one PATCH per chunk
    assert pushing[-1] == layer.size
    assert result.digest == _skopeo_inspect(registry, "push/chunked:v1")["Digest"]


def test_index_pull_picks_linux_amd64_by_default_and_platform_selects_another(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    arm64 = make_image(source, architecture="arm64", variant="v8")
    amd64 = make_image(source, architecture="amd64")
    armv7 = make_image(source, architecture="arm", variant="v7")
    index, index_digest = make_index(source, [(arm64, "arm64", "v8"), (amd64, "amd64", ""), (armv7, "arm", "v7")])

    async def push_index() -> None:
        async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
            await client.push(f"{registry.host}/multi/app:v1", index, "application/vnd.oci.image.index.v1+json",
                              source)  # fmt: skip

    asyncio.run(push_index())
    assert _skopeo_inspect(registry, "multi/app:v1", raw=True) == json.loads(index)

    default = _pull(registry, "multi/app:v1", ContentStore(tmp_path / "a"))
    assert (default.digest, default.index_digest) == (amd64.digest, index_digest)
    assert default.index == index
    arm = _pull(registry, "multi/app:v1", ContentStore(tmp_path / "b"), platform="linux/arm64")
    assert arm.digest == arm64.digest
    arm7 = _pull(registry, "multi/app:v1", ContentStore(tmp_path / "c"), platform="linux/arm/v7")
    assert arm7.digest == armv7.digest
    with pytest.raises(PlatformNotFound, match="no matching manifest for linux/s390x in the manifest list entries"):
        _pull(registry, "multi/app:v1", ContentStore(tmp_path / "d"), platform="linux/s390x")


def test_pull_by_digest(registry: LocalRegistry, store: ContentStore, tmp_path: Path) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source)
    _push(registry, "pull/bydigest:v1", image, source)
    pulled = _pull(registry, f"pull/bydigest@{image.digest}", store)
    assert pulled.digest == image.digest


def test_interrupted_download_resumes_with_range(registry: LocalRegistry, store: ContentStore, tmp_path: Path) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(400_000,))
    _push(registry, "pull/resume:v1", image, source)
    layer = image.layers[0]
    # An earlier pull died after 150 000 bytes of the layer: its ingest is still there.
    partial = store.writer(layer.digest, layer.size)
    partial.write(source.read(layer.digest)[:150_000])
    partial.abort()
    events: list[ProgressEvent] = []

    pulled = _pull(registry, "pull/resume:v1", store, progress=events.append)

    assert store.read(layer.digest) == source.read(layer.digest)
    # Only the missing tail (plus the config) crossed the network: the registry honoured Range.
    assert pulled.bytes_downloaded == layer.size - 150_000 + image.config.size
    first = next(e for e in events if e.status == progress.DOWNLOADING and e.id == layer.digest[7:19])
    assert first.current == 150_000


def test_an_ingest_holding_the_whole_blob_is_committed_without_a_request(
    registry: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    """A pull killed after the last byte but before the commit left a complete ingest.

    Resuming it with ``Range: bytes=<size>-`` asks for nothing: docker-registry answers
    416 with the blob's Content-Length and a 33-byte body (a broken response, seen as a
    500 through a proxy).  Like containerd, the pull commits (and so verifies) it instead.
    """
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(4_000,))
    _push(registry, "pull/whole:v1", image, source)
    layer = image.layers[0]
    partial = store.writer(layer.digest, layer.size)
    partial.write(source.read(layer.digest))
    partial.abort()

    pulled = _pull(registry, "pull/whole:v1", store)

    assert store.read(layer.digest) == source.read(layer.digest)
    assert pulled.bytes_downloaded == image.config.size  # the layer never crossed the network again


def test_tags_list_follows_link_pagination(registry: LocalRegistry, tmp_path: Path) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(100,))
    tags = [f"t{i}" for i in range(5)]
    for tag in tags:
        _push(registry, f"tags/app:{tag}", image, source)

    async def list_tags() -> tuple[list[str], list[str]]:
        async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
            paged = await client.list_tags(f"{registry.host}/tags/app", page_size=2)
            repositories = await client.catalog(registry.host, page_size=1)
            return paged, repositories

    paged, repositories = asyncio.run(list_tags())
    assert sorted(paged) == tags
    assert "tags/app" in repositories


def test_docker_io_is_served_by_a_configured_mirror(
    registry: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source)
    _push(registry, "library/berthtest-mirrored:v1", image, source)

    async def go() -> PulledImage:
        hosts = RegistryHosts(mirrors=[f"http://{registry.host}"], certs_dir=None)
        async with RegistryClient(hosts) as client:
            return await client.pull("berthtest-mirrored:v1", store)

    pulled = asyncio.run(go())
    assert pulled.digest == image.digest
    assert pulled.reference.familiar() == "berthtest-mirrored:v1"


def test_unreachable_registry_is_unavailable_with_its_address(store: ContentStore) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{sock.getsockname()[1]}"

        async def go() -> None:
            async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
                await client.pull(f"{host}/x:y", store)

        with pytest.raises(RegistryUnavailable, match=rf'Get "http://{host}/v2/": .*'):
            asyncio.run(go())


def test_downloads_are_bounded_and_queued_layers_report_waiting(
    registry: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(1_000, 2_000, 3_000))
    _push(registry, "pull/bounded:v1", image, source)
    events: list[ProgressEvent] = []

    async def go() -> None:
        async with RegistryClient(RegistryHosts(certs_dir=None), max_concurrent_downloads=1) as client:
            await client.pull(f"{registry.host}/pull/bounded:v1", store, progress=events.append)

    asyncio.run(go())
    # One download at a time: the config holds the only slot, so every layer waits,
    # and no layer starts before the previous one completed.
    assert [e.id for e in events if e.status == progress.WAITING] == [layer.digest[7:19] for layer in image.layers]
    order = [(e.id, e.status) for e in events if e.status in (progress.DOWNLOADING, progress.DOWNLOAD_COMPLETE)]
    active: set[str] = set()
    for layer_id, status in order:
        if status == progress.DOWNLOADING:
            active.add(layer_id)
            assert len(active) == 1
        else:
            active.discard(layer_id)


def test_inspect_resolves_digest_and_platforms_without_pulling(registry: LocalRegistry, tmp_path: Path) -> None:
    source = ContentStore(tmp_path / "source")
    amd64 = make_image(source)
    arm64 = make_image(source, architecture="arm64")
    index, index_digest = make_index(source, [(amd64, "amd64", ""), (arm64, "arm64", "")])
    _push(registry, "inspect/single:v1", amd64, source)

    async def go() -> tuple[DistributionInspect, DistributionInspect]:
        async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
            await client.push(f"{registry.host}/inspect/multi:v1", index, mediatypes.OCI_INDEX, source)
            single = await client.inspect(f"{registry.host}/inspect/single:v1")
            multi = await client.inspect(f"{registry.host}/inspect/multi:v1")
            return single, multi

    single, multi = asyncio.run(go())
    assert (single.descriptor.digest, single.descriptor.size) == (amd64.digest, len(amd64.manifest))
    assert single.platforms == (Platform("linux", "amd64"),)
    assert (multi.descriptor.digest, multi.descriptor.media_type) == (index_digest, mediatypes.OCI_INDEX)
    assert multi.platforms == (Platform("linux", "amd64"), Platform("linux", "arm64"))


def test_parallel_pulls_of_one_image_into_one_store_download_each_blob_once(
    registry: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(200_000, 100_000))
    _push(registry, "pull/parallel:v1", image, source)

    async def go() -> list[PulledImage]:
        async with RegistryClient(RegistryHosts(certs_dir=None)) as client:
            ref = f"{registry.host}/pull/parallel:v1"
            return list(await asyncio.gather(*(client.pull(ref, store) for _ in range(8))))

    pulls = asyncio.run(go())
    assert {p.digest for p in pulls} == {image.digest}
    assert all(store.read(d) == source.read(d) for d in image.blob_digests)
    # The content store's ingest lock serializes writers of a digest; the ones that
    # waited find the blob committed and skip it, so the total is one image's worth.
    # Eight pulls wait on more locks than the default executor has threads: waiting
    # there once starved the commit they waited for (a deadlock).
    assert sum(p.bytes_downloaded for p in pulls) == sum(b.size for b in (image.config, *image.layers))

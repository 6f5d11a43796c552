"""kill -9 of berthd in the middle of `docker pull`, at random points, 22 times.

The kill point is a byte count, not a delay: a proxy in front of the registry
streams blob bodies and, once the chosen number of blob bytes went out, waits
until berthd has some of the blob in its ingest (so a partial exists to resume)
and SIGKILLs it.  Points past the last byte kill berthd while it verifies and
records the image.  After each kill, with berthd down, the store must hold the
image whole or not at all and every committed blob must match its digest; after
the restart berthd's recovery leaves no orphan blob; the next pull resumes a
partial download with a Range request, and the last pull completes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.images.image_store import ImageStore
from tests.api.conftest import RunningDaemon, stop
from tests.api.test_containers import docker_cli
from tests.api.test_push import skopeo_inspect, start_registry_berthd
from tests.fixtures.registry import LocalRegistry
from tests.images.registry.proxy import FlakyProxy

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_registry]

TRIALS = 22
IMAGE = "library/debian:bookworm-slim"


@pytest.fixture
def proxy(seeded_registry: LocalRegistry) -> Iterator[FlakyProxy]:
    front = FlakyProxy(upstream=seeded_registry.url)
    front.start()
    try:
        yield front
    finally:
        front.stop()


def _ingest_size(data_root: Path, digest: str) -> int:
    try:
        return (data_root / "content" / "ingest" / digest.split(":", 1)[1] / "data").stat().st_size
    except FileNotFoundError:
        return 0


def _kill_when_ingesting(daemon: RunningDaemon, data_root: Path) -> object:
    def trip(digest: str) -> None:
        # Bounded wait for a condition (berthd wrote part of the blob), not a sleep for timing.
        for _ in range(200):
            if _ingest_size(data_root, digest) > 0 or daemon.proc.poll() is not None:
                break
            time.sleep(0.01)
        if daemon.proc.poll() is None:
            os.kill(daemon.proc.pid, signal.SIGKILL)

    return trip


def _check_store(data_root: Path, wanted_config: str) -> tuple[bool, int]:
    """(image present, orphan blob count): the image is whole or absent, every blob matches its digest."""
    store = ImageStore(data_root)
    try:
        images = store.list()
        assert [r.id for r in images] in ([], [wanted_config]), [r.id for r in images]
        for record in images:
            needed = [record.id, *(layer.blob_digest for layer in record.layers)]
            assert all(store.content.has(d) for d in needed), f"image {record.id} is listed with blobs missing"
        for digest in store.content.walk():
            hasher = hashlib.sha256()
            with store.content.open(digest) as blob:
                while chunk := blob.read(1 << 20):
                    hasher.update(chunk)
            assert "sha256:" + hasher.hexdigest() == digest, f"corrupt blob {digest}"
        orphans = set(store.content.walk()) - store.referenced_blobs()
        return bool(images), len(orphans)
    finally:
        store.close()


def test_kill_9_mid_pull_never_leaves_a_half_image(proxy: FlakyProxy, seeded_registry: LocalRegistry,
                                                   run_tag: str) -> None:
    manifest: dict[str, Any] = skopeo_inspect(seeded_registry, IMAGE, raw=True)
    config = manifest["config"]["digest"]
    layer = manifest["layers"][0]["digest"]
    total = sum(blob["size"] for blob in [manifest["config"], *manifest["layers"]])
    name = f"{proxy.host}/{IMAGE}"
    rng = random.Random(run_tag)
    outcomes: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-d-") as tmp:
        root = Path(tmp)
        data_root = root / "data"
        for _ in range(TRIALS):
            point = rng.randrange(1, total + total // 8)  # past `total`: killed while recording
            daemon = start_registry_berthd(root, run_tag, {})
            proxy.arm(point, _kill_when_ingesting(daemon, data_root))  # type: ignore[arg-type]
            docker_cli(daemon, "pull", name, timeout=120)
            proxy.disarm()
            if daemon.proc.poll() is None:  # the pull finished before the point: kill it now
                os.kill(daemon.proc.pid, signal.SIGKILL)
            daemon.proc.wait()
            present, _ = _check_store(data_root, config)
            partial = _ingest_size(data_root, layer)
            outcomes.append("complete" if present else f"absent (partial {partial} B)")
            # Restarted, berthd collects the orphans and lists the same thing.
            daemon = start_registry_berthd(root, run_tag, {})
            try:
                listed = docker_cli(daemon, "images", "-q", "--no-trunc").stdout.split()
                assert listed == ([config] if present else [])
                if present:
                    assert docker_cli(daemon, "rmi", name).returncode == 0  # the next trial pulls again
            finally:
                stop(daemon)
            assert _check_store(data_root, config)[1] == 0, "orphan blobs survived a restart"
        # A pull after all that completes; the partial downloads were resumed with Range requests.
        daemon = start_registry_berthd(root, run_tag, {})
        try:
            pulled = docker_cli(daemon, "pull", name, timeout=120)
            assert pulled.returncode == 0, pulled.stderr
            image = json.loads(docker_cli(daemon, "image", "inspect", name).stdout)[0]
            assert image["Id"] == config
        finally:
            stop(daemon)
    assert any(r.range and not r.range.startswith("bytes=0-") for r in proxy.seen if layer in r.path), outcomes
    assert any(o.startswith("absent (partial") and not o.endswith(" 0 B)") for o in outcomes), outcomes
    print("kill -9 mid-pull outcomes:", outcomes)

"""docker load: both archive formats, real skopeo output, and clean refusal of bad archives."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from engine.images.archive_load import load
from engine.images.digests import sha256_digest
from engine.images.errors import InvalidArchive
from engine.images.image_store import ImageStore
from engine.images.layer_blobs import detect_compression

from .archive_factory import Link, docker_save_members, write_archive_with_writer, write_tar
from .image_factory import layer_tar

REPO_ROOT = Path(__file__).resolve().parents[2]
# `make images` output; BERTH_SEED_IMAGES_DIR points elsewhere (a private build).
SEED_DIR = Path(os.environ.get("BERTH_SEED_IMAGES_DIR") or REPO_ROOT / "build" / "images")
SEED_ARCHIVES = sorted(SEED_DIR.glob("*.tar"))
LAYER_A = layer_tar({"bin/a": b"a" * 100})
LAYER_B = layer_tar({"etc/b": b"b" * 50})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    image_store = ImageStore(tmp_path / "berthtest-data")
    yield image_store
    image_store.close()


def assert_nothing_stored(store: ImageStore) -> None:
    assert store.list() == []
    assert list(store.content.walk()) == []
    assert list((store.content.root / "ingest").iterdir()) == []
    tmp = store.data_root / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.fixture
def source_archive(tmp_path: Path) -> Path:
    """A seed archive when `make images` ran, else one written by archive_write."""
    if SEED_ARCHIVES:
        return SEED_ARCHIVES[0]
    path = tmp_path / "source.tar"
    write_archive_with_writer(path, tmp_path, ["busybox:latest"], [{"bin/busybox": b"\x7fELF" + b"0" * 1000}])
    return path


@pytest.mark.skipif(not SEED_ARCHIVES, reason="no seed archives: run `make images` (build/images/*.tar)")
@pytest.mark.parametrize("archive", SEED_ARCHIVES, ids=[p.name for p in SEED_ARCHIVES])
def test_loads_seed_archive(store: ImageStore, archive: Path) -> None:
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    result = load(store, archive)
    expected_tags = [tag for entry in manifest for tag in entry["RepoTags"]]
    assert result.tags == expected_tags
    assert result.messages() == [f"Loaded image: {tag}" for tag in expected_tags]
    for entry in manifest:
        image_id = "sha256:" + entry["Config"].rsplit("/", 1)[-1]
        record = store.get(image_id)
        assert len(record.layers) == len(entry["Layers"])


def test_loads_legacy_layout_with_layer_dirs(store: ImageStore, tmp_path: Path) -> None:
    members, image_id = docker_save_members([LAYER_A, LAYER_B], ["app:1", "app:2"])
    result = load(store, write_tar(tmp_path / "a.tar", members))
    assert result.messages() == ["Loaded image: app:1", "Loaded image: app:2"]
    record = store.get("app:2")
    assert record.id == image_id
    assert record.diff_ids == [sha256_digest(LAYER_A), sha256_digest(LAYER_B)]
    assert record.size == 150


def test_untagged_image_reports_its_id(store: ImageStore, tmp_path: Path) -> None:
    members, image_id = docker_save_members([LAYER_A], [])
    assert load(store, write_tar(tmp_path / "a.tar", members)).messages() == [f"Loaded image ID: {image_id}"]


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_layers_are_verified_by_diff_id(store: ImageStore, tmp_path: Path, compress: str) -> None:
    members, _ = docker_save_members([LAYER_A], ["app:1"])
    packed = gzip.compress(LAYER_A) if compress == "gzip" else zstandard.ZstdCompressor().compress(LAYER_A)
    members = [(name, packed if name.endswith("layer.tar") else data) for name, data in members]
    load(store, write_tar(tmp_path / "a.tar", members))
    (layer,) = store.get("app:1").layers
    assert layer.diff_id == sha256_digest(LAYER_A)
    assert layer.blob_digest == sha256_digest(packed)
    assert layer.media_type.endswith(f"+{compress}")


def test_stream_and_compressed_archive(store: ImageStore, tmp_path: Path) -> None:
    members, image_id = docker_save_members([LAYER_A], ["app:1"])
    archive = write_tar(tmp_path / "a.tar", members).read_bytes()

    class Socketish(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk = self._data.read(min(len(buffer), 1000))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    load(store, Socketish(gzip.compress(archive)))  # type: ignore[arg-type]
    assert store.resolve("app:1") == image_id
    assert list((store.data_root / "tmp").iterdir()) == []


def test_symlinked_layer_inside_archive_is_followed(store: ImageStore, tmp_path: Path) -> None:
    members, image_id = docker_save_members([LAYER_A], ["app:1"])
    members = [(n, d) for n, d in members if n != "layer0/layer.tar"]
    members += [("shared.tar", LAYER_A), ("layer0/layer.tar", Link("../shared.tar"))]
    load(store, write_tar(tmp_path / "a.tar", members))
    assert store.resolve("app:1") == image_id


def _skopeo(*args: str) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    subprocess.run(["skopeo", "copy", "-q", *args], check=True, capture_output=True, timeout=120)


def test_loads_skopeo_docker_archive(store: ImageStore, tmp_path: Path, source_archive: Path) -> None:
    out = tmp_path / "skopeo-docker.tar"
    _skopeo(f"docker-archive:{source_archive}", f"docker-archive:{out}:example.com/team/app:v1")
    result = load(store, out)
    assert result.tags == ["example.com/team/app:v1"]
    assert store.inspect("example.com/team/app:v1")["RepoTags"] == ["example.com/team/app:v1"]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_loads_skopeo_oci_archive(
    store: ImageStore, tmp_path: Path, source_archive: Path, compression: str
) -> None:
    out = tmp_path / "skopeo-oci.tar"
    _skopeo(
        "--dest-compress-format", compression, f"docker-archive:{source_archive}", f"oci-archive:{out}:busybox:oci"
    )
    result = load(store, out)
    assert result.tags == ["busybox:oci"]
    record = store.get("busybox:oci")
    assert record.target is not None and record.target.media_type == "application/vnd.oci.image.manifest.v1+json"
    with store.content.open(record.layers[0].blob_digest) as blob:
        assert detect_compression(blob.read(8)) == compression
    # Same layers as the source, whatever the compression.
    with tarfile.open(source_archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    assert record.diff_ids == config["rootfs"]["diff_ids"]


def test_oci_ref_name_that_is_only_a_tag_names_nothing(
    store: ImageStore, tmp_path: Path, source_archive: Path
) -> None:
    out = tmp_path / "skopeo-oci.tar"
    _skopeo(f"docker-archive:{source_archive}", f"oci-archive:{out}:latest")
    result = load(store, out)
    assert result.tags == [] and len(result.untagged_ids) == 1


# -- malformed archives: refused, nothing kept ------------------------------------


def _broken(tmp_path: Path, edit: str) -> Path:
    members, _ = docker_save_members([LAYER_A, LAYER_B], ["app:1"])
    manifest = json.loads(dict(members)["manifest.json"])  # type: ignore[arg-type]
    members = [(n, d) for n, d in members if n != "manifest.json"]
    if edit == "traversal-in-manifest":
        manifest[0]["Layers"][0] = "../../etc/passwd"
    elif edit == "absolute-in-manifest":
        manifest[0]["Config"] = "/etc/passwd"
    elif edit == "traversal-member":
        members.append(("../evil", b"x"))
    elif edit == "escaping-symlink":
        members = [(n, d) for n, d in members if n != "layer1/layer.tar"]
        members.append(("layer1/layer.tar", Link("../../../etc/passwd")))
    elif edit == "absolute-symlink":
        members = [(n, d) for n, d in members if n != "layer1/layer.tar"]
        members.append(("layer1/layer.tar", Link("/etc/passwd")))
    elif edit == "dangling-hardlink":
        members = [(n, d) for n, d in members if n != "layer1/layer.tar"]
        members.append(("layer1/layer.tar", Link("nowhere.tar", hard=True)))
    elif edit == "device":
        members.append(("dev0", tarfile.CHRTYPE[0]))
    elif edit == "duplicate":
        members.append(("layer0/layer.tar", LAYER_B))
    elif edit == "bad-diff-id":
        members = [(n, LAYER_B if n == "layer0/layer.tar" else d) for n, d in members]
    elif edit == "missing-layer":
        members = [(n, d) for n, d in members if n != "layer1/layer.tar"]
    elif edit == "layer-not-tar":
        members = [(n, b"not a tar" * 100 if n == "layer1/layer.tar" else d) for n, d in members]
    elif edit == "bad-tag":
        manifest[0]["RepoTags"] = ["Bad:Tag"]
    elif edit == "count-mismatch":
        manifest[0]["Layers"].pop()
    if edit == "bad-json":
        members.append(("manifest.json", b"[{not json"))
    else:
        members.append(("manifest.json", json.dumps(manifest).encode()))
    return write_tar(tmp_path / f"{edit}.tar", members)


BROKEN = [
    ("traversal-in-manifest", "path traversal"),
    ("absolute-in-manifest", "absolute path"),
    ("traversal-member", "path traversal"),
    ("escaping-symlink", "outside the archive"),
    ("absolute-symlink", "outside the archive"),
    ("dangling-hardlink", "no file"),
    ("device", "special file"),
    ("duplicate", "duplicate"),
    ("bad-diff-id", "config says"),
    ("missing-layer", "no file"),
    ("layer-not-tar", "not a readable"),
    ("bad-json", "not valid JSON"),
    ("bad-tag", "invalid repo tag"),
    ("count-mismatch", "diff_ids for"),
]


@pytest.mark.parametrize(("edit", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_malformed_archive_is_refused_and_leaves_nothing(
    store: ImageStore, tmp_path: Path, edit: str, message: str
) -> None:
    with pytest.raises(InvalidArchive, match=message):
        load(store, _broken(tmp_path, edit))
    assert_nothing_stored(store)


def test_truncated_archive_is_refused(store: ImageStore, tmp_path: Path) -> None:
    members, _ = docker_save_members([layer_tar({"big": bytes(200_000)})], ["app:1"])
    # manifest.json first so the cut falls inside the layer.
    members.sort(key=lambda m: m[0] != "manifest.json")
    path = write_tar(tmp_path / "full.tar", members)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(InvalidArchive):
        load(store, cut)
    assert_nothing_stored(store)


def test_oci_blob_with_wrong_digest_is_refused(store: ImageStore, tmp_path: Path, source_archive: Path) -> None:
    out = tmp_path / "oci.tar"
    _skopeo(f"docker-archive:{source_archive}", f"oci-archive:{out}:busybox:oci")
    with tarfile.open(out) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    index = json.loads(dict(members)["index.json"])
    manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"][7:]
    manifest = json.loads(dict(members)[manifest_name])
    layer_name = "blobs/sha256/" + manifest["layers"][0]["digest"][7:]
    tampered = [(n, d[:-1] + bytes([d[-1] ^ 1]) if n == layer_name else d) for n, d in members]
    with pytest.raises(InvalidArchive, match="digest mismatch"):
        load(store, write_tar(tmp_path / "tampered.tar", tampered))  # type: ignore[arg-type]
    assert_nothing_stored(store)


def test_failure_in_second_image_hides_the_first(store: ImageStore, tmp_path: Path) -> None:
    good, _ = docker_save_members([LAYER_A], ["good:1"])
    bad, _ = docker_save_members([LAYER_B], ["bad:1"])
    bad_entry = json.loads(dict(bad)["manifest.json"])[0]  # type: ignore[arg-type]
    # The bad image claims the good image's layer: its diff_id check fails.
    manifest = [*json.loads(dict(good)["manifest.json"]), {**bad_entry, "Layers": ["good-layer0/layer.tar"]}]  # type: ignore[arg-type]
    members = [(f"good-{n}" if n.startswith("layer") else n, d) for n, d in good if n != "manifest.json"]
    manifest[0]["Layers"] = ["good-layer0/layer.tar"]
    members += [(n, d) for n, d in bad if n.endswith(".json") and n != "manifest.json"]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with pytest.raises(InvalidArchive, match="config says"):
        load(store, write_tar(tmp_path / "two.tar", members))
    assert_nothing_stored(store)


def test_failed_load_keeps_blobs_other_images_use(store: ImageStore, tmp_path: Path) -> None:
    members, image_id = docker_save_members([LAYER_A], ["app:1"])
    load(store, write_tar(tmp_path / "ok.tar", members))
    before = sorted(store.content.walk())
    with pytest.raises(InvalidArchive):
        load(store, _broken(tmp_path, "bad-diff-id"))
    assert sorted(store.content.walk()) == before
    assert store.resolve("app:1") == image_id


def test_loading_the_same_archive_twice_is_idempotent(store: ImageStore, tmp_path: Path) -> None:
    members, image_id = docker_save_members([LAYER_A, LAYER_B], ["app:1"])
    archive = write_tar(tmp_path / "a.tar", members)
    load(store, archive)
    blobs = sorted(store.content.walk())
    assert load(store, archive).image_ids == [image_id]
    assert [r.id for r in store.list()] == [image_id]
    assert sorted(store.content.walk()) == blobs


def _oci_blob(members: list[tuple[str, bytes | Link | int]], data: bytes) -> dict[str, object]:
    digest = sha256_digest(data)
    members.append((f"blobs/sha256/{digest[7:]}", data))
    return {"digest": digest, "size": len(data)}


def test_multi_platform_index_loads_the_host_manifest(store: ImageStore, tmp_path: Path) -> None:
    from engine.images.platforms import host_architecture

    from .image_factory import config_json

    members: list[tuple[str, bytes | Link | int]] = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')]
    layer = gzip.compress(LAYER_A)
    layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_oci_blob(members, layer)}
    config = config_json([sha256_digest(LAYER_A)])
    config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", **_oci_blob(members, config)}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_desc, "layers": [layer_desc]}).encode()
    host_manifest = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_oci_blob(members, manifest),
                     "platform": {"os": "linux", "architecture": host_architecture()}}
    absent = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "e" * 64,
              "size": 10, "platform": {"os": "linux", "architecture": "s390x"}}
    attestation = {**host_manifest, "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                   "platform": {"os": "unknown", "architecture": "unknown"}}
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [absent, attestation, host_manifest]}).encode()
    index_desc = {"mediaType": "application/vnd.oci.image.index.v1+json", **_oci_blob(members, index),
                  "annotations": {"io.containerd.image.name": "example.com/multi:1",
                                  "org.opencontainers.image.ref.name": "1"}}
    members.append(("index.json", json.dumps({"schemaVersion": 2, "manifests": [index_desc]}).encode()))
    result = load(store, write_tar(tmp_path / "multi.tar", members))
    assert result.tags == ["example.com/multi:1"]
    record = store.get("example.com/multi:1")
    assert record.target is not None and record.target.digest == index_desc["digest"]
    assert {m.digest for m in record.manifests} == {index_desc["digest"], host_manifest["digest"]}
    assert store.inspect("example.com/multi:1")["Descriptor"]["digest"] == index_desc["digest"]

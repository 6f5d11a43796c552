"""The local registry fixtures serve the Registry HTTP API v2 as Docker Hub would:
plain, behind basic auth, behind TLS, and pre-seeded with the seed images."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import ssl
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from tests.fixtures.registry import SEED_IMAGES, LocalRegistry, archive_transport

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])

pytestmark = pytest.mark.needs_registry


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = _sha256(data)
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def write_tiny_oci_layout(layout: Path, tag: str, content: bytes) -> Path:
    """A one-layer image holding /hello, as an OCI image layout (image-spec image-layout.md)."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    layer = layer_buf.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [_sha256(layer)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_write_blob(layout, config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **_write_blob(layout, layer)}],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                **_write_blob(layout, manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return layout


@pytest.fixture(scope="module")
def tiny_docker_archive(tmp_path_factory) -> Path:
    """A `docker save` archive of a one-layer image, made by skopeo from an OCI layout."""
    workdir = tmp_path_factory.mktemp("tiny-image")
    layout = write_tiny_oci_layout(workdir / "layout", "v1", b"hello from berth tests\n")
    archive = workdir / "tiny.tar"
    subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "--quiet", f"oci:{layout}:v1", f"docker-archive:{archive}:tiny:v1"],
        check=True,
        capture_output=True,
    )
    return archive


def _get_manifest(registry: LocalRegistry, repo: str, ref: str, **kwargs) -> requests.Response:
    return requests.get(
        f"{registry.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": MANIFEST_ACCEPT},
        verify=registry.requests_verify(),
        timeout=30,
        **kwargs,
    )


def _assert_served_manifest(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] in (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
    assert response.headers["Docker-Content-Digest"] == _sha256(response.content)
    manifest: dict = response.json()
    assert manifest["schemaVersion"] == 2
    return manifest


# ---------------------------------------------------------------- plain HTTP


def test_registry_answers_the_v2_api(registry):
    response = requests.get(f"{registry.url}/v2/", timeout=30)
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert registry.host.startswith("127.0.0.1:")
    assert registry.url == f"http://{registry.host}"


def test_archive_transport_is_detected(tiny_docker_archive, tmp_path):
    assert archive_transport(tiny_docker_archive) == "docker-archive"
    assert archive_transport(write_tiny_oci_layout(tmp_path / "layout", "v1", b"x")) == "oci"


def test_pushed_archive_is_served_with_its_blobs(registry, tiny_docker_archive):
    registry.push_archive(tiny_docker_archive, "berthtest/tiny:v1")
    manifest = _assert_served_manifest(_get_manifest(registry, "berthtest/tiny", "v1"))
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = requests.get(f"{registry.url}/v2/berthtest/tiny/blobs/{descriptor['digest']}", timeout=30)
        assert blob.status_code == 200
        assert _sha256(blob.content) == descriptor["digest"]
        assert len(blob.content) == descriptor["size"]


def test_oci_layout_push_keeps_the_oci_media_type(registry, tmp_path):
    layout = write_tiny_oci_layout(tmp_path / "layout", "v2", b"oci layout\n")
    registry.push_archive(layout, "berthtest/tiny-oci:v2", source_ref="v2")
    response = _get_manifest(registry, "berthtest/tiny-oci", "v2")
    assert _assert_served_manifest(response)["mediaType"] == OCI_MANIFEST


def test_unknown_manifest_is_not_found(registry):
    response = _get_manifest(registry, "berthtest/absent", "latest")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


# ---------------------------------------------------------------- seeded


@pytest.mark.parametrize("reference", sorted(SEED_IMAGES))
def test_seed_image_manifest_is_served(seeded_registry, reference):
    repo, tag = reference.rsplit(":", 1)
    manifest = _assert_served_manifest(_get_manifest(seeded_registry, repo, tag))
    config = requests.get(f"{seeded_registry.url}/v2/{repo}/blobs/{manifest['config']['digest']}", timeout=30)
    assert config.status_code == 200
    assert _sha256(config.content) == manifest["config"]["digest"]
    assert json.loads(config.content)["os"] == "linux"


def test_seeded_registry_lists_the_seed_repositories(seeded_registry):
    catalog = requests.get(f"{seeded_registry.url}/v2/_catalog", timeout=30).json()
    assert {ref.rsplit(":", 1)[0] for ref in SEED_IMAGES} <= set(catalog["repositories"])


# ---------------------------------------------------------------- basic auth


def test_basic_auth_registry_challenges_anonymous_clients(registry_basic_auth):
    response = requests.get(f"{registry_basic_auth.url}/v2/", timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_basic_auth_registry_rejects_a_wrong_password(registry_basic_auth):
    wrong = (registry_basic_auth.username, registry_basic_auth.password + "-wrong")
    response = requests.get(f"{registry_basic_auth.url}/v2/", auth=wrong, timeout=30)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_basic_auth_registry_accepts_its_credentials(registry_basic_auth, tiny_docker_archive):
    credentials = (registry_basic_auth.username, registry_basic_auth.password)
    assert requests.get(f"{registry_basic_auth.url}/v2/", auth=credentials, timeout=30).status_code == 200
    registry_basic_auth.push_archive(tiny_docker_archive, "berthtest/private:v1")
    assert _get_manifest(registry_basic_auth, "berthtest/private", "v1").status_code == 401
    _assert_served_manifest(_get_manifest(registry_basic_auth, "berthtest/private", "v1", auth=credentials))


# ---------------------------------------------------------------- TLS


def test_tls_registry_is_trusted_with_the_test_ca(registry_tls, test_ca):
    assert registry_tls.url.startswith("https://127.0.0.1:")
    assert registry_tls.ca_cert_path == test_ca.cert_path
    response = requests.get(f"{registry_tls.url}/v2/", verify=str(registry_tls.ca_cert_path), timeout=30)
    assert response.status_code == 200


def test_tls_registry_fails_verification_without_the_test_ca(registry_tls):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{registry_tls.url}/v2/", timeout=30)


def test_tls_registry_certificate_names_localhost_too(registry_tls):
    context = ssl.create_default_context(cafile=str(registry_tls.ca_cert_path))
    port = int(registry_tls.host.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_registry_accepts_a_push_verified_by_the_ca(registry_tls, tiny_docker_archive):
    registry_tls.push_archive(tiny_docker_archive, "berthtest/secure:v1")
    _assert_served_manifest(_get_manifest(registry_tls, "berthtest/secure", "v1"))


# ---------------------------------------------------------------- factory


def test_make_registry_gives_fresh_registries_stopped_after_the_test(make_registry, registry, test_ca):
    from tests.fixtures.cleanup import is_running, process_start_time
    from tests.fixtures.registry import BasicAuth

    plain = make_registry()
    secured = make_registry(
        auth=BasicAuth("berthtest-u", "pw"), tls=test_ca.issue_server("fresh"), ca_cert_path=test_ca.cert_path
    )
    assert len({plain.host, secured.host, registry.host}) == 3
    assert requests.get(f"{plain.url}/v2/_catalog", timeout=30).json() == {"repositories": []}
    challenged = requests.get(f"{secured.url}/v2/", verify=secured.requests_verify(), timeout=30)
    assert challenged.status_code == 401
    assert plain.pid is not None
    start = process_start_time(plain.pid)
    plain.stop()
    assert not is_running(plain.pid, start)

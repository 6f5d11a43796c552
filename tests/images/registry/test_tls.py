"""HTTPS registries: the CA comes from certs.d/<host:port>/ca.crt (like dockerd's
/etc/docker/certs.d), client certificates from client.cert/client.key."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from engine.images.content_store import ContentStore
from engine.images.registry import PulledImage, RegistryClient, RegistryHosts, RegistryUnavailable
from tests.fixtures import capabilities
from tests.fixtures.registry import LocalRegistry
from tests.fixtures.tls import KeyPair, TestCA

from .imagegen import make_image


class MutualTLSRegistry(LocalRegistry):
    """A TLS registry that also demands a client certificate from `client_ca`."""

    def __init__(self, workdir: Path, server: KeyPair, ca: Path, client: KeyPair) -> None:
        super().__init__(workdir, tls=server, ca_cert_path=ca)
        self.client = client

    def _write_config(self) -> None:
        super()._write_config()
        config = json.loads(self.config_path.read_text())
        assert self.ca_cert_path is not None
        config["http"]["tls"]["clientcas"] = [str(self.ca_cert_path)]
        self.config_path.write_text(json.dumps(config, indent=2))

    def _wait_ready(self) -> bool:
        """Like the base class's probe, but presenting the client certificate this registry demands."""
        assert self._process is not None
        cert = (str(self.client.cert_path), str(self.client.key_path))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                response = requests.get(f"{self.url}/v2/", verify=self.requests_verify(), cert=cert, timeout=2)
            except requests.ConnectionError:
                time.sleep(0.01)
                continue
            return response.status_code == 200
        return False


@pytest.fixture(scope="module")
def registry_mtls(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[MutualTLSRegistry]:
    if not capabilities.registry().available:
        pytest.skip(f"[needs_registry] {capabilities.registry().missing}")
    registry = MutualTLSRegistry(
        tmp_path_factory.mktemp("registry-mtls"),
        test_ca.issue_server("registry-mtls"),
        test_ca.cert_path,
        test_ca.issue_client("berthtest-client"),
    )
    registry.start()
    yield registry
    registry.stop()


def _certs_dir(root: Path, registry: LocalRegistry, *, client: KeyPair | None = None) -> Path:
    host_dir = root / "certs.d" / registry.host
    host_dir.mkdir(parents=True)
    assert registry.ca_cert_path is not None
    shutil.copyfile(registry.ca_cert_path, host_dir / "ca.crt")
    if client is not None:
        shutil.copyfile(client.cert_path, host_dir / "client.cert")
        shutil.copyfile(client.key_path, host_dir / "client.key")
    return root / "certs.d"


def _roundtrip(registry: LocalRegistry, hosts: RegistryHosts, tmp_path: Path, repo: str) -> PulledImage:
    source = ContentStore(tmp_path / "source")
    image = make_image(source)

    async def go() -> PulledImage:
        async with RegistryClient(hosts) as client:
            await client.push(f"{registry.host}/{repo}:v1", image.manifest, image.media_type, source)
            return await client.pull(f"{registry.host}/{repo}:v1", ContentStore(tmp_path / "sink"))

    pulled = asyncio.run(go())
    assert pulled.digest == image.digest
    return pulled


def test_tls_registry_is_verified_with_the_ca_from_certs_d(registry_tls: LocalRegistry, tmp_path: Path) -> None:
    # No loopback exemption: this host must be verified, not treated as insecure.
    hosts = RegistryHosts(certs_dir=_certs_dir(tmp_path, registry_tls), default_insecure_cidrs=())
    _roundtrip(registry_tls, hosts, tmp_path, "tls/app")


def test_tls_registry_fails_verification_without_its_ca(registry_tls: LocalRegistry, tmp_path: Path) -> None:
    hosts = RegistryHosts(certs_dir=tmp_path / "empty-certs.d", default_insecure_cidrs=())

    async def go() -> None:
        async with RegistryClient(hosts) as client:
            await client.pull(f"{registry_tls.host}/tls/app:v1", ContentStore(tmp_path / "sink"))

    expected = rf'Get "https://{registry_tls.host}/v2/": .*certificate verify failed'
    with pytest.raises(RegistryUnavailable, match=expected):
        asyncio.run(go())


def test_loopback_registry_is_insecure_by_default_like_dockerd(registry_tls: LocalRegistry, tmp_path: Path) -> None:
    _roundtrip(registry_tls, RegistryHosts(certs_dir=None), tmp_path, "tls/insecure")


def test_client_certificate_from_certs_d_passes_mutual_tls(
    registry_mtls: MutualTLSRegistry, tmp_path: Path
) -> None:
    certs = _certs_dir(tmp_path, registry_mtls, client=registry_mtls.client)
    _roundtrip(registry_mtls, RegistryHosts(certs_dir=certs, default_insecure_cidrs=()), tmp_path, "mtls/app")


def test_mutual_tls_registry_refuses_a_client_without_certificate(
    registry_mtls: MutualTLSRegistry, tmp_path: Path
) -> None:
    hosts = RegistryHosts(certs_dir=_certs_dir(tmp_path, registry_mtls), default_insecure_cidrs=())

    async def go() -> None:
        async with RegistryClient(hosts) as client:
            await client.list_tags(f"{registry_mtls.host}/mtls/app")

    with pytest.raises(RegistryUnavailable, match=registry_mtls.host):
        asyncio.run(go())

"""Pure parts of the client: challenges, X-Registry-Auth, endpoints, platforms, error bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from engine.images.registry import (
    Credentials,
    CredentialsError,
    DockerConfigCredentials,
    Endpoint,
    Platform,
    PlatformNotFound,
    RegistryHosts,
    decode_registry_auth_header,
)
from engine.images.registry.challenge import parse_challenges
from engine.images.registry.errors import describe_error
from engine.images.registry.manifests import Descriptor, ImageIndex, select_platform
from engine.images.registry.proxies import ProxyConfig


def test_bearer_challenge_with_quoted_params_and_commas_in_scope() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope"'
    )
    [challenge] = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example/token"
    assert challenge.service == "registry.example"
    assert challenge.scopes == ["repository:a/b:pull,push", "repository:c:pull"]
    assert challenge.params["error"] == "insufficient_scope"


def test_several_challenges_in_one_header_and_escapes() -> None:
    challenges = parse_challenges('Basic realm="say \\"hi\\"", Bearer realm="https://t/x", service=svc')
    assert [(c.scheme, c.params) for c in challenges] == [
        ("basic", {"realm": 'say "hi"'}),
        ("bearer", {"realm": "https://t/x", "service": "svc"}),
    ]


@pytest.mark.parametrize("padding", [True, False])
@pytest.mark.parametrize("urlsafe", [True, False])
def test_x_registry_auth_decodes_base64url_json(padding: bool, urlsafe: bool) -> None:
    # '?>' in the password makes standard and URL-safe base64 differ.
    body = json.dumps({"username": "bob", "password": "p?>p?>", "serveraddress": "https://reg.example:5000/v1/"})
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(body.encode()).decode()
    if not padding:
        encoded = encoded.rstrip("=")
    assert decode_registry_auth_header(encoded) == ("reg.example:5000", Credentials("bob", "p?>p?>"))


def test_x_registry_auth_identity_token_and_empty_values() -> None:
    token = base64.urlsafe_b64encode(json.dumps({"identitytoken": "tok"}).encode()).decode()
    assert decode_registry_auth_header(token) == ("docker.io", Credentials(identity_token="tok"))
    assert decode_registry_auth_header("") is None
    assert decode_registry_auth_header(base64.b64encode(b"{}").decode()) is None
    with pytest.raises(CredentialsError):
        decode_registry_auth_header("!!!not base64")


def test_docker_config_auths_forms(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw:with:colons").decode()},
                    "reg.example:5000": {"username": "u", "password": "p"},
                    "https://other.example/": {"identitytoken": "idt"},
                }
            }
        )
    )
    creds = DockerConfigCredentials(config)
    assert creds.get("registry-1.docker.io") == Credentials("hub", "pw:with:colons")
    assert creds.get("docker.io") == Credentials("hub", "pw:with:colons")
    assert creds.get("reg.example:5000") == Credentials("u", "p")
    assert creds.get("other.example") == Credentials(identity_token="idt")
    assert creds.get("unknown.example") is None


def test_endpoints_mirrors_first_for_docker_io_only_and_never_for_push() -> None:
    hosts = RegistryHosts(mirrors=["http://127.0.0.1:5001", "https://mirror.example"], certs_dir=None)
    assert hosts.endpoints("docker.io") == [
        Endpoint("http", "127.0.0.1:5001", verify_tls=False, mirror=True),
        Endpoint("https", "mirror.example", verify_tls=True, mirror=True),
        Endpoint("https", "registry-1.docker.io", verify_tls=True),
    ]
    assert hosts.endpoints("docker.io", for_push=True) == [Endpoint("https", "registry-1.docker.io")]
    assert hosts.endpoints("quay.example") == [Endpoint("https", "quay.example")]


def test_insecure_registries_try_https_without_verification_then_http() -> None:
    hosts = RegistryHosts(insecure_registries=["reg.example:5000", "10.0.0.0/8"], certs_dir=None)
    expected = [Endpoint("https", "reg.example:5000", verify_tls=False), Endpoint("http", "reg.example:5000", False)]
    assert hosts.endpoints("reg.example:5000") == expected
    assert hosts.is_insecure("10.1.2.3:443")
    assert hosts.is_insecure("127.0.0.1:5000") and hosts.is_insecure("localhost:5000")
    assert not hosts.is_insecure("192.168.1.1:5000")
    assert not RegistryHosts(default_insecure_cidrs=()).is_insecure("127.0.0.1:5000")


def test_platform_parsing_normalizes_like_containerd() -> None:
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "")
    assert Platform.parse("linux/arm") == Platform("linux", "arm", "v7")
    assert Platform.parse("x86_64") == Platform("linux", "amd64", "")
    assert str(Platform.parse("linux/arm/v6")) == "linux/arm/v6"


def test_select_platform_skips_attestations_and_prefers_exact_variant() -> None:
    def entry(digest: str, arch: str, variant: str = "", os: str = "linux") -> Descriptor:
        media_type = "application/vnd.oci.image.manifest.v1+json"
        return Descriptor(media_type, f"sha256:{digest * 64}", 1, platform=Platform(os, arch, variant))

    index = ImageIndex(
        "application/vnd.oci.image.index.v1+json",
        (entry("0", "unknown", os="unknown"), entry("1", "arm", "v6"), entry("2", "arm", "v7"), entry("3", "amd64")),
    )
    assert select_platform(index, Platform.parse("linux/arm/v7")).digest == f"sha256:{'2' * 64}"
    assert select_platform(index, Platform.parse("linux/amd64")).digest == f"sha256:{'3' * 64}"
    with pytest.raises(PlatformNotFound):
        select_platform(index, Platform.parse("windows/amd64"))


def test_error_bodies_read_like_dockers_messages() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {}}]})
    assert describe_error(404, body.encode()) == "manifest unknown: manifest unknown"
    assert describe_error(401, b"") == "unauthorized: authentication required"
    assert describe_error(502, b"<html>bad gateway</html>") == "unexpected status 502"


def test_proxy_choice_follows_go_rules() -> None:
    no_proxy = ".internal, 10.0.0.0/8,reg.example:5000"
    proxies = ProxyConfig(http_proxy="http://proxy.corp:3128", https_proxy="proxy.corp:3129", no_proxy=no_proxy)
    assert proxies.for_url("https://registry-1.docker.io/v2/") == "http://proxy.corp:3129"
    assert proxies.for_url("http://mirror.example/v2/") == "http://proxy.corp:3128"
    assert proxies.for_url("https://a.b.internal/v2/") is None
    assert proxies.for_url("https://internal/v2/") is None
    assert proxies.for_url("https://10.1.2.3:5000/v2/") is None
    assert proxies.for_url("https://reg.example:5000/v2/") is None
    assert proxies.for_url("https://reg.example:5001/v2/") == "http://proxy.corp:3129"
    # Go never proxies loopback, whatever NO_PROXY says.
    assert proxies.for_url("http://127.0.0.1:5000/v2/") is None
    assert proxies.for_url("http://localhost:5000/v2/") is None
    assert ProxyConfig(https_proxy="http://p:1", no_proxy="*").for_url("https://x/v2/") is None
    assert ProxyConfig.from_env({"https_proxy": "http://p:1"}).https_proxy == "http://p:1"


def test_hosts_from_daemon_json_keys() -> None:
    hosts = RegistryHosts.from_daemon_config(
        {
            "registry-mirrors": ["http://127.0.0.1:5000/"],
            "insecure-registries": ["reg.example:5000"],
            "proxies": {"https-proxy": "http://p:3128", "no-proxy": "corp"},
        },
        certs_dir=None,
    )
    assert hosts.endpoints("docker.io")[0] == Endpoint("http", "127.0.0.1:5000", verify_tls=False, mirror=True)
    assert hosts.is_insecure("reg.example:5000")
    assert hosts.proxies.for_url("https://registry-1.docker.io/v2/") == "http://p:3128"
    assert hosts.proxies.for_url("https://a.corp/v2/") is None


def test_progress_events_serialize_as_dockers_json_messages() -> None:
    from engine.images.registry import ProgressEvent

    assert ProgressEvent("0123456789ab", "Downloading", 512, 2048).to_json() == {
        "status": "Downloading",
        "id": "0123456789ab",
        "progressDetail": {"current": 512, "total": 2048},
    }
    assert ProgressEvent("0123456789ab", "Pull complete").to_json() == {
        "status": "Pull complete",
        "id": "0123456789ab",
        "progressDetail": {},
    }

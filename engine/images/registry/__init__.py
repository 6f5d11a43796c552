"""Registry client: OCI distribution-spec v1.1 with Docker's token auth, on aiohttp.

    hosts = RegistryHosts.from_daemon_config(daemon_json)
    async with RegistryClient(hosts, DockerConfigCredentials.default()) as client:
        image = await client.pull("debian:bookworm-slim", content_store, progress=emit)

Modules, one job each:
    client        RegistryClient: pull / push / list_tags / catalog / inspect / login, endpoint fallback
    hosts         which endpoints serve a domain (mirrors, insecure registries), TLS from certs.d
    proxies       HTTP(S)_PROXY / NO_PROXY choice, Go's rules
    credentials   config.json auths, credential helpers, X-Registry-Auth
    challenge     WWW-Authenticate parsing
    auth          Basic and Bearer token flow, token cache
    transport     requests with auth retry, redirects, 5xx/connection retries, error mapping
    repository    one distribution-spec endpoint per method (manifests, blobs, uploads, tags)
    manifests     manifest/index/descriptor parsing, digests, platform choice
    pull, push    the two flows; sink holds the content-store protocols they write to / read from
    progress      Docker's per-layer progress statuses
    errors        RegistryError and its subclasses (extending engine.images.errors)
"""

from .client import RegistryClient
from .credentials import (
    ChainedCredentials,
    Credentials,
    CredentialStore,
    DockerConfigCredentials,
    RequestCredentials,
    StaticCredentials,
    credentials_from_registry_auth_header,
    decode_registry_auth_header,
)
from .errors import (
    CredentialsError,
    DigestMismatch,
    ManifestError,
    NotFound,
    PlatformNotFound,
    PullAccessDenied,
    RegistryError,
    RegistryUnavailable,
    Unauthorized,
    UploadError,
)
from .hosts import Endpoint, RegistryHosts
from .login import LOGIN_SUCCEEDED, LoginResult
from .manifests import Descriptor, Platform
from .progress import ProgressEvent
from .pull import DistributionInspect, PulledImage
from .push import PushResult
from .sink import BlobSink, BlobSource, BlobWriter

__all__ = [
    "LOGIN_SUCCEEDED",
    "BlobSink",
    "BlobSource",
    "BlobWriter",
    "ChainedCredentials",
    "CredentialStore",
    "Credentials",
    "CredentialsError",
    "Descriptor",
    "DigestMismatch",
    "DistributionInspect",
    "DockerConfigCredentials",
    "Endpoint",
    "LoginResult",
    "ManifestError",
    "NotFound",
    "Platform",
    "PlatformNotFound",
    "ProgressEvent",
    "PullAccessDenied",
    "PulledImage",
    "PushResult",
    "RegistryClient",
    "RegistryError",
    "RegistryHosts",
    "RegistryUnavailable",
    "RequestCredentials",
    "StaticCredentials",
    "Unauthorized",
    "UploadError",
    "credentials_from_registry_auth_header",
    "decode_registry_auth_header",
]

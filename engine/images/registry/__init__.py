"""Registry client: OCI distribution-spec v1.1 with Docker's token auth, on aiohttp.

    async with RegistryClient(RegistryHosts(mirrors=[...]), DockerConfigCredentials.default()) as c:
        image = await c.pull("debian:bookworm-slim", content_store, progress=print)
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

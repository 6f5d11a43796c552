"""Which endpoints serve a registry domain, and how to talk TLS to each.

Mirrors Docker's daemon.json settings: `registry-mirrors` (tried first, for
docker.io only), `insecure-registries` (host[:port] or CIDR; 127.0.0.0/8 is
insecure by default), and per-host certificates in a certs.d directory laid out
like /etc/docker/certs.d/<host:port>/{ca.crt,client.cert,client.key}.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.images.reference import DEFAULT_DOMAIN as DOCKER_HUB

from .proxies import ProxyConfig

log = logging.getLogger(__name__)

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DEFAULT_CERTS_DIR = Path("/etc/docker/certs.d")
DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8",)


@dataclass(frozen=True)
class Endpoint:
    """One base URL to reach a registry at, with the TLS policy that applies to it."""

    scheme: str  # "https" or "http"
    host: str  # host[:port], the key of certs.d and of credentials
    verify_tls: bool = True
    mirror: bool = False

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


@dataclass
class RegistryHosts:
    """Endpoint and TLS configuration for every registry the client talks to."""

    mirrors: Sequence[str] = ()
    insecure_registries: Sequence[str] = ()
    certs_dir: Path | None = DEFAULT_CERTS_DIR
    default_insecure_cidrs: Sequence[str] = DEFAULT_INSECURE_CIDRS
    proxies: ProxyConfig = field(default_factory=ProxyConfig.from_env)
    _ssl_cache: dict[tuple[str, bool], ssl.SSLContext] = field(default_factory=dict, repr=False)

    @classmethod
    def from_daemon_config(
        cls, config: Mapping[str, Any], *, certs_dir: Path | None = DEFAULT_CERTS_DIR
    ) -> RegistryHosts:
        """Read dockerd's daemon.json keys: registry-mirrors, insecure-registries, proxies.

        Proxies given in daemon.json win over the environment, as in dockerd 23+.
        """
        proxies = ProxyConfig.from_env()
        configured = config.get("proxies") or {}
        if configured:
            proxies = ProxyConfig(
                configured.get("http-proxy", proxies.http_proxy),
                configured.get("https-proxy", proxies.https_proxy),
                configured.get("no-proxy", proxies.no_proxy),
            )
        return cls(
            mirrors=tuple(str(m).rstrip("/") for m in config.get("registry-mirrors") or ()),
            insecure_registries=tuple(str(r) for r in config.get("insecure-registries") or ()),
            certs_dir=certs_dir,
            proxies=proxies,
        )

    def endpoints(self, domain: str, *, for_push: bool = False) -> list[Endpoint]:
        """Endpoints to try in order for `domain`.

        Mirrors come first and only for pulls from docker.io (Docker never pushes to a
        mirror).  An insecure registry is tried with HTTPS without verification and
        then plain HTTP, as dockerd does.
        """
        found: list[Endpoint] = []
        if domain == DOCKER_HUB and not for_push:
            for mirror in self.mirrors:
                parts = urlsplit(mirror if "://" in mirror else f"https://{mirror}")
                host = parts.netloc
                if parts.scheme == "http":
                    found.append(Endpoint("http", host, verify_tls=False, mirror=True))
                else:
                    found.extend(self._for_host(host, mirror=True))
        host = DOCKER_HUB_ENDPOINT if domain == DOCKER_HUB else domain
        found.extend(self._for_host(host, mirror=False))
        return found

    def _for_host(self, host: str, *, mirror: bool) -> list[Endpoint]:
        if self.is_insecure(host):
            return [
                Endpoint("https", host, verify_tls=False, mirror=mirror),
                Endpoint("http", host, verify_tls=False, mirror=mirror),
            ]
        return [Endpoint("https", host, verify_tls=True, mirror=mirror)]

    def is_insecure(self, host: str) -> bool:
        if host in self.insecure_registries:
            return True
        hostname = _hostname(host)
        if hostname == "localhost":
            hostname = "127.0.0.1"
        try:
            address = ipaddress.ip_address(hostname)
        except ValueError:
            return False
        for cidr in [*self.insecure_registries, *self.default_insecure_cidrs]:
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if address in network:
                return True
        return False

    def ssl_context(self, endpoint: Endpoint) -> ssl.SSLContext | bool:
        """What aiohttp's `ssl=` gets: False for plain HTTP, else a context for the host."""
        if endpoint.scheme == "http":
            return False
        key = (endpoint.host, endpoint.verify_tls)
        context = self._ssl_cache.get(key)
        if context is None:
            context = self._build_context(endpoint)
            self._ssl_cache[key] = context
        return context

    def _build_context(self, endpoint: Endpoint) -> ssl.SSLContext:
        # The system trust store first, then the host's own CAs (corporate proxies and
        # private registries: ARCHITECTURE.md complaint #7).
        context = ssl.create_default_context()
        if not endpoint.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        host_dir = self.certs_dir / endpoint.host if self.certs_dir else None
        if host_dir is not None and host_dir.is_dir():
            # Docker loads every *.crt as a CA and every *.cert with its *.key as a
            # client certificate (daemon/config "certs.d" layout).
            for ca in sorted(host_dir.glob("*.crt")):
                log.debug("registry %s: trusting CA %s", endpoint.host, ca)
                context.load_verify_locations(cafile=str(ca))
            for cert in sorted(host_dir.glob("*.cert")):
                key = cert.with_suffix(".key")
                if not key.exists():
                    log.warning("registry %s: client certificate %s has no %s", endpoint.host, cert, key.name)
                    continue
                log.debug("registry %s: client certificate %s", endpoint.host, cert)
                context.load_cert_chain(certfile=str(cert), keyfile=str(key))
        return context


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

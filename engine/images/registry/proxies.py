"""HTTP(S) proxy choice for registry traffic, as dockerd makes it.

dockerd reads HTTP_PROXY / HTTPS_PROXY / NO_PROXY from its environment (or
daemon.json "proxies") and Go's http.ProxyFromEnvironment applies them, never
proxying requests to localhost or loopback addresses.  Corporate networks need this
(ARCHITECTURE.md complaint #7).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProxyConfig:
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxyConfig:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name) or env.get(name.lower()) or ""

        return cls(get("HTTP_PROXY"), get("HTTPS_PROXY"), get("NO_PROXY"))

    def for_url(self, url: str) -> str | None:
        """The proxy URL to reach `url` through, or None to connect directly."""
        parts = urlsplit(url)
        proxy = self.https_proxy if parts.scheme == "https" else self.http_proxy
        host = (parts.hostname or "").lower()
        if not proxy or not host or _is_loopback(host) or self._bypassed(host, parts.port):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"

    def _bypassed(self, host: str, port: int | None) -> bool:
        # NO_PROXY entries: "*", a host or domain (".example.com" and "example.com" both
        # cover subdomains), an IP, a CIDR, optionally with ":port".
        for raw in self.no_proxy.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                return True
            entry_host, entry_port = entry, None
            if entry.count(":") == 1 and not entry.startswith("["):
                entry_host, _, port_text = entry.partition(":")
                entry_port = int(port_text) if port_text.isdigit() else None
            if entry_port is not None and entry_port != port:
                continue
            if _ip_match(host, entry_host):
                return True
            domain = entry_host.lstrip(".")
            if host == domain or host.endswith("." + domain):
                return True
        return False


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ip_match(host: str, entry: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        return address in ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return False

"""Where the engine is: DOCKER_HOST-style addresses and their TLS settings.

The CLI, the desktop and vmbackend all resolve the address here, so
`DOCKER_HOST=unix://...`, `-H tcp://127.0.0.1:2375` and the default Berth
socket mean the same thing everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from engine.client.errors import ClientError

if TYPE_CHECKING:
    import ssl


# NamedTuples, not dataclasses: immutable and comparable alike, without importing dataclasses/inspect
# (several ms of every CLI command's start-up).
class TLSConfig(NamedTuple):
    ca: str | None
    cert: str | None
    key: str | None
    verify: bool = True

    def context(self) -> ssl.SSLContext:
        import ssl  # only TLS connections pay for it (several ms of CLI start-up)

        context = ssl.create_default_context(cafile=self.ca)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert and self.key:
            context.load_cert_chain(self.cert, self.key)
        return context


class EngineAddress(NamedTuple):
    scheme: str  # unix | tcp | ssh
    path: str = ""
    host: str = ""
    port: int = 0  # ssh: 0 = from ~/.ssh/config, else 22
    tls: TLSConfig | None = None
    user: str = ""  # ssh only: "" = from ~/.ssh/config, else the local user

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        if self.scheme == "ssh":
            return f"ssh://{self.user + '@' if self.user else ''}{self.host}{f':{self.port}' if self.port else ''}"
        return f"tcp://{self.host}:{self.port}"

    @property
    def host_header(self) -> str:
        """The HTTP Host the clients send: a placeholder unless the engine is reached by TCP."""
        return f"{self.host}:{self.port}" if self.scheme == "tcp" else "docker"


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:%")  # names, IPv4/6
_USER_CHARS = _HOST_CHARS | frozenset("@+=,")


def parse_host(value: str, tls: TLSConfig | None = None) -> EngineAddress:
    if value.startswith("/"):
        return EngineAddress("unix", path=value)
    parts = urlsplit(value)
    if parts.scheme in ("unix", "npipe"):
        return EngineAddress("unix", path=parts.path)
    if parts.scheme in ("tcp", "http", "https"):
        secure = tls is not None or parts.scheme == "https"
        port = parts.port or (2376 if secure else 2375)
        return EngineAddress("tcp", host=parts.hostname or "127.0.0.1", port=port,
                             tls=tls or (TLSConfig(None, None, None) if parts.scheme == "https" else None))
    if parts.scheme == "ssh":
        # The path (docker allows one) is ignored, as by the docker CLI: dial-stdio on the remote finds its engine.
        try:
            port = parts.port or 0
        except ValueError:
            raise ClientError(f"invalid ssh engine address {value!r}: bad port") from None
        if not parts.hostname:
            raise ClientError(f"invalid ssh engine address {value!r}: want ssh://[user@]host[:port]")
        if parts.password is not None:
            raise ClientError(f"invalid ssh engine address {value!r}: a password in the address is not allowed")
        # The host and user reach a ProxyCommand (%h, %r: split into arguments) or a `Match exec` command
        # from ~/.ssh/config: refused with a shell's or ssh's metacharacters or a leading '-', as OpenSSH
        # does since 9.6 (CVE-2023-51385) and Go's url.Parse does for the docker CLI.
        for part, text, allowed in (("host", parts.hostname, _HOST_CHARS), ("user", parts.username or "", _USER_CHARS)):
            if text.startswith("-") or set(text) - allowed:
                raise ClientError(f"invalid ssh engine address {value!r}: characters not allowed in the {part}")
        return EngineAddress("ssh", host=parts.hostname, port=port, user=parts.username or "")
    raise ClientError(f"unsupported engine address {value!r}: want unix:///path, tcp://host:port "
                      "or ssh://[user@]host[:port]")


def tls_from_env(environ: Mapping[str, str] | None = None) -> TLSConfig | None:
    """DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, as the docker CLI reads them."""
    env = os.environ if environ is None else environ
    cert_path = env.get("DOCKER_CERT_PATH")
    verify = env.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    if not (verify or cert_path):
        return None
    base = cert_path or os.path.expanduser("~/.docker")
    return TLSConfig(os.path.join(base, "ca.pem"), os.path.join(base, "cert.pem"), os.path.join(base, "key.pem"),
                     verify=verify)


def default_address(environ: Mapping[str, str] | None = None) -> EngineAddress:
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST")
    if host:
        return parse_host(host, tls_from_env(env))
    from engine import paths

    return EngineAddress("unix", path=str(paths.default_socket()))

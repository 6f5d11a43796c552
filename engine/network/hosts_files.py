"""A container's /etc/hosts, /etc/resolv.conf and /etc/hostname, in dockerd's formats.

The daemon writes them into the container's directory and the runtime
bind-mounts them (dockerd: /var/lib/docker/containers/<id>/{hosts,resolv.conf,hostname}).

- hosts: libnetwork etchosts' default block, then `--add-host` entries, then the
  container's own addresses with its hostname.  `host-gateway` in `--add-host`
  is replaced by the daemon's host-gateway address (dockerd `--host-gateway-ip`,
  by default the default bridge's gateway), which is how host.docker.internal
  works on Linux.
- resolv.conf: on a network with the embedded resolver, a single nameserver
  (the network's gateway: see engine/network/dns.py for why not 127.0.0.11)
  plus the host's search domains and `options ndots:0`, as dockerd writes it;
  otherwise the host's nameservers minus loopback ones (unreachable from a
  container netns), falling back to Google's like dockerd.  `--dns`,
  `--dns-search`, `--dns-option` override each part.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from pathlib import Path

from engine.network.errors import InvalidParameter

HOST_GATEWAY = "host-gateway"
DEFAULT_HOSTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)
# dockerd's fallback when the host only has loopback resolvers (libnetwork resolvconf defaultIPv4Dns).
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


@dataclass(frozen=True)
class ExtraHost:
    name: str
    address: str


def parse_extra_host(text: str, host_gateway: IPv4Address | None = None) -> ExtraHost:
    """`name:ip` (or `name=ip`) from `--add-host` / HostConfig.ExtraHosts; `ip` may be `host-gateway`."""
    sep = "=" if "=" in text else ":"
    name, _, address = text.partition(sep)
    if not name or not address:
        raise InvalidParameter(f"invalid extra host {text!r}: expected name:ip")
    if address == HOST_GATEWAY:
        if host_gateway is None:
            raise InvalidParameter("unable to derive the IP value for host-gateway")
        return ExtraHost(name, str(host_gateway))
    address = address.strip("[]")
    try:
        ip_address(address)
    except ValueError as exc:
        raise InvalidParameter(f"invalid IP address in extra host {text!r}") from exc
    return ExtraHost(name, address)


def hosts_file(
    hostname: str,
    addresses: Sequence[IPv4Address],
    domainname: str = "",
    extra_hosts: Sequence[ExtraHost] = (),
) -> str:
    lines = [f"{ip}\t{names}" for ip, names in DEFAULT_HOSTS]
    lines += [f"{h.address}\t{h.name}" for h in extra_hosts]
    own = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    lines += [f"{address}\t{own}" for address in addresses]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse_resolv_conf(text: str) -> ResolvConf:
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]  # the last search/domain line wins (resolv.conf(5))
        elif words[0] == "options":
            options += words[1:]
    return ResolvConf(tuple(nameservers), tuple(search), tuple(options))


def _is_loopback(address: str) -> bool:
    try:
        return ip_address(address.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


def container_resolv_conf(
    host: ResolvConf,
    embedded_dns: IPv4Address | None = None,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> str:
    """The container's resolv.conf from the host's and the container's --dns* settings."""
    search = tuple(dns_search) if dns_search else host.search
    if search == (".",):  # `--dns-search .`: no search domains
        search = ()
    if embedded_dns is not None:
        # User-defined networks: the embedded resolver forwards to --dns servers or the host's.
        nameservers: tuple[str, ...] = (str(embedded_dns),)
        options = ("ndots:0", *[o for o in (dns_options or host.options) if not o.startswith("ndots:")])
        if any(o.startswith("ndots:") for o in dns_options):
            options = tuple(dns_options)
    else:
        nameservers = tuple(dns) if dns else tuple(n for n in host.nameservers if not _is_loopback(n))
        nameservers = nameservers or FALLBACK_NAMESERVERS
        options = tuple(dns_options) if dns_options else host.options
    lines = ["# Generated by Berth."]
    lines += [f"nameserver {n}" for n in nameservers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hostname_file(hostname: str) -> str:
    return hostname + "\n"


@dataclass(frozen=True)
class ContainerFiles:
    hosts: str
    resolv_conf: str
    hostname: str

    def write(self, directory: Path) -> dict[str, Path]:
        """Write the three files atomically into `directory`; returns {"/etc/hosts": path, ...} for the mounts."""
        directory.mkdir(parents=True, exist_ok=True)
        written = {}
        for filename, text in (("hosts", self.hosts), ("resolv.conf", self.resolv_conf), ("hostname", self.hostname)):
            path = directory / filename
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{filename}-")
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            written[f"/etc/{filename}"] = path
        return written

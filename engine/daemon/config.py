"""berthd's configuration: dockerd's flag names, plus daemon.json (--config-file)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import paths

# daemon.json keys berthd understands; anything else is refused by name, like
# dockerd does, so a typo never silently does nothing.
KNOWN_KEYS = {
    "hosts",
    "data-root",
    "exec-root",
    "registry-mirrors",
    "insecure-registries",
    "default-runtime",
    "runtimes",
    "log-driver",
    "log-opts",
    "live-restore",
    "debug",
    "pidfile",
    "group",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
    "cgroup-parent",
    "bridge",
    "bip",
    "iptables",
    "ip-forward",
    "userland-proxy",
    "default-address-pools",
    "mtu",
    "shim-mode",
    "shim-host-max-containers",
}


class ConfigError(Exception):
    """A flag or daemon.json value berthd cannot use."""


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=list)
    data_root: Path = field(default_factory=paths.data_root)
    exec_root: Path = field(default_factory=paths.exec_root)
    config_file: Path | None = None
    registry_mirrors: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    default_runtime: str = "berth"
    runtimes: dict[str, Any] = field(default_factory=dict)
    log_opts: dict[str, str] = field(default_factory=dict)
    # Berth keeps containers running across its own restarts by default (dockerd: false);
    # daemon.json "live-restore": false stops them at shutdown as dockerd does.
    live_restore: bool = True
    debug: bool = False
    pidfile: Path | None = None
    group: str | None = None
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    cgroup_parent: str = "berth"
    # Networking (dockerd's flags): --bridge=none disables the default bridge network.
    bridge: str = "berth0"
    bip: str | None = None
    iptables: bool = True
    ip_forward: bool = True
    userland_proxy: bool = True
    default_address_pools: list[Any] = field(default_factory=list)  # daemon.json: [{"base":..,"size":..}]
    mtu: int = 1500
    # Container supervisors: "shared" (one shim host process for many containers, a new host every
    # shim_host_max_containers adoptions; 0 = no limit) or "per-container" (one shim process each).
    shim_mode: str = "shared"
    shim_host_max_containers: int = 32

    @property
    def listen_hosts(self) -> list[str]:
        return self.hosts or [f"unix://{self.exec_root / 'berth.sock'}"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="berthd", description="Berth's container engine (Docker Engine API)")
    p.add_argument("-H", "--host", action="append", dest="hosts", default=None, metavar="ADDR",
                   help="listen address: unix:///path, tcp://127.0.0.1:2375, fd:// (repeatable)")
    p.add_argument("--data-root", type=Path, help="persistent state (default: %(default)s)")
    p.add_argument("--exec-root", type=Path, help="runtime state: sockets, pid files")
    p.add_argument("--config-file", type=Path, help="daemon.json")
    p.add_argument("--registry-mirror", action="append", dest="registry_mirrors", default=None)
    p.add_argument("--insecure-registry", action="append", dest="insecure_registries", default=None)
    p.add_argument("--default-runtime", "--runtime", dest="default_runtime")
    p.add_argument("--live-restore", type=_bool_flag, nargs="?", const=True, default=None, dest="live_restore",
                   help="keep containers running while berthd is down (default true)")
    p.add_argument("-D", "--debug", action="store_true", default=None)
    p.add_argument("-p", "--pidfile", type=Path)
    p.add_argument("-G", "--group", help="group owning the unix socket")
    p.add_argument("--tlsverify", action="store_true", default=None, help="require client certificates (mutual TLS)")
    p.add_argument("--tlscacert")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--cgroup-parent", help="parent cgroup of containers (default: berth, under berthd's own)")
    p.add_argument("-b", "--bridge", help="the default bridge network's interface (default berth0; none: no default "
                   "bridge network)")
    p.add_argument("--bip", help="the default bridge's address and subnet, e.g. 10.20.0.1/24")
    p.add_argument("--iptables", type=_bool_flag, nargs="?", const=True, default=None,
                   help="add iptables rules (default true)")
    p.add_argument("--ip-forward", type=_bool_flag, nargs="?", const=True, default=None, dest="ip_forward",
                   help="enable net.ipv4.ip_forward (default true)")
    p.add_argument("--userland-proxy", type=_bool_flag, nargs="?", const=True, default=None, dest="userland_proxy",
                   help="serve published ports on loopback with a proxy (default true)")
    p.add_argument("--default-address-pool", action="append", dest="default_address_pools", default=None,
                   metavar="base=CIDR,size=N", help="subnets for new networks (repeatable)")
    p.add_argument("--mtu", type=int, help="MTU of the default bridge (default 1500)")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    return p


def load_config(argv: list[str] | None) -> tuple[DaemonConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    config = DaemonConfig(config_file=args.config_file)
    if args.config_file is not None:
        apply_file(config, read_config_file(args.config_file))
    # Flags win over the file, like dockerd (which refuses conflicts; we let the flag win and say so).
    for name in ("hosts", "data_root", "exec_root", "registry_mirrors", "insecure_registries",
                 "default_runtime", "live_restore", "debug", "pidfile", "group", "tlsverify",
                 "tlscacert", "tlscert", "tlskey", "cgroup_parent", "bridge", "bip", "iptables", "ip_forward",
                 "userland_proxy", "default_address_pools", "mtu"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    check_runtimes(config)
    if config.shim_mode not in ("shared", "per-container"):
        raise ConfigError(f"invalid shim-mode {config.shim_mode!r}: use 'shared' or 'per-container'")
    if not isinstance(config.shim_host_max_containers, int) or config.shim_host_max_containers < 0:
        raise ConfigError(f"invalid shim-host-max-containers {config.shim_host_max_containers!r}: "
                          "a number of containers (0: no limit)")
    return config, args


def check_runtimes(config: DaemonConfig) -> None:
    """--runtime / default-runtime names a known runtime; each runtimes entry has a path that exists."""
    from engine.containers.runtimes import RuntimeConfigError, Runtimes

    try:
        Runtimes.from_config(config.default_runtime, config.runtimes)
    except RuntimeConfigError as exc:
        raise ConfigError(str(exc)) from exc


def _bool_flag(text: str) -> bool:
    """Go's flag syntax for booleans: --iptables, --iptables=false."""
    value = text.lower()
    if value in ("1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"config file {path}: unknown option(s): {', '.join(unknown)}")
    return raw


def apply_file(config: DaemonConfig, raw: dict[str, Any]) -> None:
    for key, value in raw.items():
        attr = key.replace("-", "_")
        if attr == "log_driver":
            continue
        setattr(config, attr, Path(value) if attr in ("data_root", "exec_root", "pidfile") else value)

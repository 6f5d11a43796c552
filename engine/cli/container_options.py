"""`run`/`create` flags → the body of POST /containers/create (docker's cli/command/container/opts.go)."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from typing import Any

from engine.cli.context import ArgumentParser, UsageError

_RAM = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)b?$", re.I)
_RAM_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def add_flags(p: ArgumentParser) -> None:
    """The flags `run` and `create` share."""
    add = p.add_argument
    add("--name", help="Assign a name to the container")
    add("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    add("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    add("-e", "--env", action="append", default=[], help="Set environment variables")
    add("--env-file", action="append", default=[], help="Read in a file of environment variables")
    add("-w", "--workdir", help="Working directory inside the container")
    add("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    add("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    add("-h", "--hostname", help="Container host name")
    add("-l", "--label", action="append", default=[], help="Set meta data on a container")
    add("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    add("--tmpfs", action="append", default=[], help="Mount a tmpfs directory")
    add("-m", "--memory", help="Memory limit")
    add("--cpus", help="Number of CPUs")
    add("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)")
    add("--cap-add", action="append", default=[], help="Add Linux capabilities")
    add("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    add("--privileged", action="store_true", help="Give extended privileges to this container")
    add("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    add("--restart", default="no", help="Restart policy to apply when a container exits")
    add("--network", "--net", help="Connect a container to a network")
    add("--network-alias", "--net-alias", action="append", default=[], help="Add network-scoped alias")
    add("--mount", action="append", default=[], help="Attach a filesystem mount to the container")
    add("-p", "--publish", action="append", default=[], help="Publish a container's port(s) to the host")
    add("-P", "--publish-all", action="store_true", help="Publish all exposed ports to random ports")
    add("--expose", action="append", default=[], help="Expose a port or a range of ports")
    add("--health-cmd", help="Command to run to check health")
    add("--health-interval", help="Time between running the check (ms|s|m|h) (default 0s)")
    add("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    add("--health-start-period", help="Start period for the container to initialize before starting health-retries "
                                      "countdown (ms|s|m|h) (default 0s)")
    add("--health-start-interval", help="Time between running the check during the start period (ms|s|m|h) "
                                        "(default 0s)")
    add("--health-retries", type=int, help="Consecutive failures needed to report unhealthy")
    add("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK")
    for flags, _, help_ in PASSTHROUGH:
        if flags[-1] in _LISTS:
            add(*flags, action="append", default=[], help=help_)
        else:
            add(*flags, help=help_)
    add("--oom-kill-disable", action="store_true", help="Disable OOM Killer")
    add("--label-file", action="append", default=[], help="Read in a line delimited file of labels")
    add("--domainname", help="Container NIS domain name")
    add("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    add("--cidfile", help="Write the container ID to the file")
    add("--init", action="store_true", help="Run an init inside the container")
    add("--platform", help="Set platform if server is multi-platform capable")
    add("--rm", action="store_true", help="Automatically remove the container when it exits")
    add("--stop-signal", help="Signal to stop the container")
    add("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")


class CreateRequest:
    """What POST /containers/create gets.  Not a dataclass: dataclasses imports inspect, ~5 ms of `berth run`."""

    def __init__(self, name: str | None, platform: str | None, body: dict[str, Any]) -> None:
        self.name = name
        self.platform = platform
        self.body = body

    @property
    def image(self) -> str:
        return str(self.body["Image"])

    @property
    def query(self) -> dict[str, str | None]:
        return {"name": self.name, "platform": self.platform}


def ram_in_bytes(value: str) -> int:
    """docker's units.RAMInBytes: `512m`, `1g`, `1.5GB`, `1024` (binary multiples)."""
    match = _RAM.match(value.strip())
    if not match:
        raise UsageError(f"invalid size: '{value}'")
    return int(float(match.group(1)) * _RAM_UNITS[match.group(2).lower()])


def _env_value(item: str, environ: Mapping[str, str]) -> str:
    # `-e NAME` takes NAME's value from the CLI's environment when it is set (opts.ValidateEnv).
    if "=" in item or item not in environ:
        return item
    return f"{item}={environ[item]}"


def read_env_file(path: str, environ: Mapping[str, str]) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise UsageError(f"open {path}: {exc.strerror or exc}") from exc
    return [_env_value(line.lstrip(), environ) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def env_entries(env_files: list[str], items: list[str], environ: Mapping[str, str]) -> list[str]:
    """`--env-file` lines first, then `-e` items: the Env list run, create and exec send."""
    return [line for path in env_files for line in read_env_file(path, environ)] + [
        _env_value(item, environ) for item in items]


def normalize_caps(names: list[str]) -> list[str] | None:
    """`net_admin` → `CAP_NET_ADMIN`, `ALL` kept: the form the docker CLI (>= 23) sends."""
    out = []
    for name in names:
        upper = name.strip().upper()
        out.append(upper if upper == "ALL" or upper.startswith("CAP_") else "CAP_" + upper)
    return out or None


def restart_policy(value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy '{value}'")
    if count and name != "on-failure":
        raise UsageError(f"invalid restart policy format: maximum retry count cannot be used with '{name}'")
    try:
        return {"Name": name, "MaximumRetryCount": int(count or 0)}
    except ValueError:
        raise UsageError(f"invalid restart policy format: maximum retry count must be an integer: {value}") from None


# Flags that go to HostConfig as they are or through a small conversion: (flags, HostConfig key, help).
PASSTHROUGH: list[tuple[tuple[str, ...], str, str]] = [
    (("--add-host",), "ExtraHosts", "Add a custom host-to-IP mapping (host:ip)"),
    (("--dns",), "Dns", "Set custom DNS servers"),
    (("--dns-option",), "DnsOptions", "Set DNS options"),
    (("--dns-search",), "DnsSearch", "Set custom DNS search domains"),
    (("--group-add",), "GroupAdd", "Add additional groups to join"),
    (("--security-opt",), "SecurityOpt", "Security Options"),
    (("--volumes-from",), "VolumesFrom", "Mount volumes from the specified container(s)"),
    (("--link",), "Links", "Add link to another container"),
    (("--device-cgroup-rule",), "DeviceCgroupRules", "Add a rule to the cgroup allowed devices list"),
    (("--device",), "Devices", "Add a host device to the container"),
    (("--ulimit",), "Ulimits", "Ulimit options"),
    (("--sysctl",), "Sysctls", "Sysctl options"),
    (("--log-opt",), "LogConfig", "Log driver options"),
    (("--storage-opt",), "StorageOpt", "Storage driver options for the container"),
    (("--annotation",), "Annotations", "Add an annotation to the container (passed through to the OCI runtime)"),
    (("--log-driver",), "LogConfig", "Logging driver for the container"),
    (("--ipc",), "IpcMode", "IPC mode to use"),
    (("--pid",), "PidMode", "PID namespace to use"),
    (("--uts",), "UTSMode", "UTS namespace to use"),
    (("--userns",), "UsernsMode", "User namespace to use"),
    (("--cgroupns",), "CgroupnsMode", "Cgroup namespace to use (host|private)"),
    (("--cgroup-parent",), "CgroupParent", "Optional parent cgroup for the container"),
    (("--runtime",), "Runtime", "Runtime to use for this container"),
    (("--cpuset-cpus",), "CpusetCpus", "CPUs in which to allow execution (0-3, 0,1)"),
    (("--cpuset-mems",), "CpusetMems", "MEMs in which to allow execution (0-3, 0,1)"),
    (("--volume-driver",), "VolumeDriver", "Optional volume driver for the container"),
    (("-c", "--cpu-shares"), "CpuShares", "CPU shares (relative weight)"),
    (("--cpu-period",), "CpuPeriod", "Limit CPU CFS (Completely Fair Scheduler) period"),
    (("--cpu-quota",), "CpuQuota", "Limit CPU CFS (Completely Fair Scheduler) quota"),
    (("--blkio-weight",), "BlkioWeight", "Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    (("--oom-score-adj",), "OomScoreAdj", "Tune host's OOM preferences (-1000 to 1000)"),
    (("--memory-swappiness",), "MemorySwappiness", "Tune container memory swappiness (0 to 100)"),
    (("--shm-size",), "ShmSize", "Size of /dev/shm"),
    (("--memory-reservation",), "MemoryReservation", "Memory soft limit"),
    (("--memory-swap",), "MemorySwap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
]
_LISTS = {"--add-host", "--dns", "--dns-option", "--dns-search", "--group-add", "--security-opt", "--volumes-from",
          "--link", "--device-cgroup-rule", "--device", "--ulimit", "--sysctl", "--log-opt", "--storage-opt",
          "--annotation"}
_INTS = {"CpuShares", "CpuPeriod", "CpuQuota", "BlkioWeight", "OomScoreAdj", "MemorySwappiness"}
_SIZES = {"ShmSize", "MemoryReservation", "MemorySwap"}


def _attr(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def _ulimit(value: str) -> dict[str, Any]:
    """`nofile=1024:2048` → {"Name", "Soft", "Hard"} (docker's units.ParseUlimit)."""
    name, eq, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)} if eq else {}
    except ValueError:
        raise UsageError(f'invalid argument "{value}" for "--ulimit" flag: invalid ulimit argument: {value}') from None


def _device(value: str) -> dict[str, str]:
    """`/dev/x[:/dev/y][:rwm]` (docker's opts.ParseDevice)."""
    parts = value.split(":")
    permissions = parts.pop() if len(parts) > 1 and set(parts[-1]) <= set("rwm") and parts[-1] else "rwm"
    host = parts[0]
    return {"PathOnHost": host, "PathInContainer": parts[1] if len(parts) > 1 else host,
            "CgroupPermissions": permissions}


def _passthrough(opts: argparse.Namespace, host: dict[str, Any]) -> None:
    for flags, key, _ in PASSTHROUGH:
        value = getattr(opts, _attr(flags[-1]))
        if value in (None, []):
            continue
        if flags[-1] == "--ulimit":
            host[key] = [_ulimit(v) for v in value]
        elif flags[-1] == "--device":
            host[key] = [_device(v) for v in value]
        elif flags[-1] in ("--sysctl", "--storage-opt", "--annotation"):
            host[key] = dict(item.partition("=")[::2] for item in value)
        elif flags[-1] == "--link":
            host[key] = [v if ":" in v else f"{v}:{v}" for v in value]  # docker's ValidateLink
        elif flags[-1] == "--log-driver":
            host.setdefault(key, {"Type": "", "Config": {}})["Type"] = value
        elif flags[-1] == "--log-opt":
            host.setdefault(key, {"Type": "", "Config": {}})["Config"] = dict(i.partition("=")[::2] for i in value)
        elif key in _INTS:
            try:
                host[key] = int(value)
            except ValueError:
                raise UsageError(f'invalid argument "{value}" for "{flags[-1]}" flag') from None
        elif key in _SIZES:
            host[key] = -1 if value == "-1" else ram_in_bytes(value)
        else:
            host[key] = value


def _volumes(values: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    binds: list[str] = []
    anonymous: dict[str, dict[str, Any]] = {}
    for value in values:
        if ":" in value:
            source, _, rest = value.partition(":")
            if source.startswith((".", "~")):
                source = os.path.abspath(os.path.expanduser(source))
            binds.append(f"{source}:{rest}")
        else:
            anonymous[value] = {}
    return binds, anonymous


_MOUNT_TYPES = ("bind", "volume", "tmpfs", "image", "npipe", "cluster")
_TRUE, _FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")


def _mount_bool(key: str, value: str | None) -> bool:
    if value is None or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"invalid value for {key}: {value}")


def parse_mount(spec: str) -> dict[str, Any]:
    """`--mount type=bind,source=/a,target=/b,readonly`: one HostConfig.Mounts entry (docker's opts/mount.go)."""
    import csv

    mount: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    volume: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}
    for field in next(csv.reader([spec])):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        raw: str | None = value if eq else None
        if key in ("readonly", "ro"):
            mount["ReadOnly"] = _mount_bool(key, raw)
        elif key == "volume-nocopy":
            volume["NoCopy"] = _mount_bool(key, raw)
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _mount_bool(key, raw)
        elif not eq:
            raise UsageError(f"invalid field '{field}' must be a key=value pair")
        elif key == "type":
            if value not in _MOUNT_TYPES:
                raise UsageError(f"invalid value for {key}: {value}")
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key == "consistency":
            mount["Consistency"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            name, _, option = value.partition("=")
            volume.setdefault("DriverConfig", {}).setdefault("Options", {})[name] = option
        elif key == "volume-label":
            name, _, label = value.partition("=")
            volume.setdefault("Labels", {})[name] = label
        elif key == "volume-subpath":
            volume["Subpath"] = value
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise UsageError(f"invalid value for {key}: {value}") from None
        else:
            raise UsageError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise UsageError("target is required")
    for options, kind, name in ((bind, "bind", "BindOptions"), (volume, "volume", "VolumeOptions"),
                                (tmpfs, "tmpfs", "TmpfsOptions")):
        if options:
            if mount["Type"] != kind:
                raise UsageError(f"cannot mix '{kind}-*' options with mount type '{mount['Type']}'")
            if kind == "volume":
                options.setdefault("DriverConfig", {})  # docker's volumeOptions() always makes one
            mount[name] = options
    return mount


def _port_range(text: str, what: str) -> tuple[int, int]:
    """`80` or `8000-8010` (go-connections nat.ParsePortRange)."""
    low, dash, high = text.partition("-")
    try:
        first, last = int(low), int(high) if dash else int(low)
    except ValueError:
        raise UsageError(f"invalid {what}: {text}") from None
    if not (0 <= first <= last <= 65535):
        raise UsageError(f"invalid {what}: {text}")
    return first, last


def _ports_of(spec: str) -> tuple[str, str, str, str]:
    """host IP, host port(s), container port(s), protocol of `-p [ip:][hostPort:]containerPort[/proto]`."""
    if "=" in spec:  # the long syntax: target=80,published=8080,protocol=udp,mode=host
        import csv

        fields = dict(f.partition("=")[::2] for f in next(csv.reader([spec])))
        unknown = set(fields) - {"target", "published", "protocol", "mode", "host_ip"}
        if unknown or "target" not in fields:
            raise UsageError(f"invalid publish opts format (should be name=value but got '{spec}')" if unknown
                             else "missing mandatory field 'target'")
        return fields.get("host_ip", ""), fields.get("published", ""), fields["target"], fields.get("protocol", "tcp")
    rest, slash, proto = spec.rpartition("/") if "/" in spec else (spec, "", "tcp")
    proto = proto.lower() if slash else "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise UsageError(f"invalid proto: {proto}")
    ip = ""
    if rest.startswith("["):  # [::1]:8080:80
        ip, _, rest = rest[1:].partition("]")
        rest = rest.removeprefix(":")
        parts = rest.split(":")
        parts = ["", *parts] if len(parts) == 1 else parts
        return ip, parts[-2], parts[-1], proto
    parts = rest.split(":")
    if len(parts) == 1:
        return "", "", parts[0], proto
    if len(parts) == 2:
        return "", parts[0], parts[1], proto
    if len(parts) == 3:
        return parts[0], parts[1], parts[2], proto
    raise UsageError(f"invalid port format for --publish: {spec}")


def publish(specs: list[str], exposed: list[str]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """ExposedPorts and PortBindings from -p and --expose (go-connections nat.ParsePortSpecs)."""
    import ipaddress

    exposed_ports: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in exposed:
        ports, _, proto = spec.partition("/")
        first, last = _port_range(ports, "range format for --expose")
        for port in range(first, last + 1):
            exposed_ports[f"{port}/{(proto or 'tcp').lower()}"] = {}
    for spec in specs:
        ip, host, container, proto = _ports_of(spec)
        if ip:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise UsageError(f"invalid IP address: {ip}") from None
        first, last = _port_range(container, "containerPort")
        host_first, host_last = _port_range(host, "hostPort") if host else (0, 0)
        if host and last != first and host_last - host_first != last - first:
            raise UsageError(f"invalid ranges specified for container and host Ports: {container} and {host}")
        for n, port in enumerate(range(first, last + 1)):
            if not host:
                host_port = ""
            elif last == first:
                host_port = host  # one container port may take any port of a host range
            else:
                host_port = str(host_first + n)
            key = f"{port}/{proto}"
            exposed_ports[key] = {}
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": host_port})
    return exposed_ports, bindings


def _health(opts: argparse.Namespace) -> dict[str, Any] | None:
    """Config.Healthcheck from --health-* (durations in nanoseconds) or --no-healthcheck (docker's opts.go)."""
    durations = {"Interval": opts.health_interval, "Timeout": opts.health_timeout,
                 "StartPeriod": opts.health_start_period, "StartInterval": opts.health_start_interval}
    given = opts.health_cmd is not None or opts.health_retries is not None or any(
        v is not None for v in durations.values())
    if opts.no_healthcheck:
        if given:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    check: dict[str, Any] = {"Test": ["CMD-SHELL", opts.health_cmd] if opts.health_cmd else None}
    flags = {"Interval": "interval", "Timeout": "timeout", "StartPeriod": "start-period",
             "StartInterval": "start-interval"}
    for key, value in durations.items():
        if value is None:
            continue
        from engine.go_duration import parse_duration

        try:
            nanoseconds = parse_duration(value)
        except ValueError as exc:
            raise UsageError(f'invalid argument "{value}" for "--health-{flags[key]}" flag: {exc}') from None
        if nanoseconds < 0:
            raise UsageError(f"--health-{flags[key]} cannot be negative")
        check[key] = nanoseconds
    if opts.health_retries is not None:
        if opts.health_retries < 0:
            raise UsageError("--health-retries cannot be negative")
        check["Retries"] = opts.health_retries
    return {k: v for k, v in check.items() if v is not None}


def build(opts: argparse.Namespace, image: str, command: list[str], environ: Mapping[str, str]) -> CreateRequest:
    env = env_entries(opts.env_file, opts.env, environ)
    file_labels = [line for path in opts.label_file for line in read_env_file(path, {})]
    labels = dict(item.partition("=")[::2] for item in [*file_labels, *opts.label])
    binds, anonymous = _volumes(opts.volume)
    host: dict[str, Any] = {
        "Binds": binds or None,
        "AutoRemove": opts.rm,
        "Privileged": opts.privileged,
        "ReadonlyRootfs": opts.read_only,
        "CapAdd": normalize_caps(opts.cap_add),
        "CapDrop": normalize_caps(opts.cap_drop),
        "RestartPolicy": restart_policy(opts.restart),
        "NetworkMode": opts.network or "default",
        "Tmpfs": {d: o for d, _, o in (t.partition(":") for t in opts.tmpfs)} or None,
        "Mounts": [parse_mount(spec) for spec in opts.mount] or None,
    }
    _passthrough(opts, host)
    if opts.oom_kill_disable:
        host["OomKillDisable"] = True
    exposed_ports, bindings = publish(opts.publish, opts.expose)
    if bindings:
        host["PortBindings"] = bindings
    if opts.publish_all:
        host["PublishAllPorts"] = True
    if opts.init:
        host["Init"] = True
    if opts.memory:
        host["Memory"] = ram_in_bytes(opts.memory)
    if opts.cpus:
        try:
            host["NanoCpus"] = round(float(opts.cpus) * 1e9)
        except ValueError:
            raise UsageError(f"invalid argument \"{opts.cpus}\" for \"--cpus\" flag") from None
    if opts.pids_limit is not None:
        host["PidsLimit"] = opts.pids_limit
    body: dict[str, Any] = {
        "Image": image,
        "Cmd": command or None,
        "Env": env or None,
        "Labels": labels,
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        # As docker's opts.go: a created container is attachable on stdout/stderr (and stdin with -i);
        # `run -d` clears these.  StdinOnce: the container's stdin closes when the attached client's does.
        "StdinOnce": opts.interactive,
        "AttachStdin": opts.interactive,
        "AttachStdout": True,
        "AttachStderr": True,
        "Volumes": anonymous,
        "HostConfig": host,
    }
    if exposed_ports:
        body["ExposedPorts"] = exposed_ports
    if opts.hostname:
        body["Hostname"] = opts.hostname
    if opts.workdir:
        body["WorkingDir"] = opts.workdir
    if opts.user:
        body["User"] = opts.user
    if opts.entrypoint is not None:
        # `--entrypoint ""` resets the image's entrypoint: docker sends [""].
        body["Entrypoint"] = [opts.entrypoint]
    if opts.stop_signal:
        body["StopSignal"] = opts.stop_signal
    if opts.stop_timeout is not None:
        body["StopTimeout"] = opts.stop_timeout
    healthcheck = _health(opts)
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    if opts.domainname:
        body["Domainname"] = opts.domainname
    if opts.network_alias or opts.ip:
        # Aliases and a fixed address live on the endpoint of the network asked for (docker's parseNetworkOpts).
        endpoint: dict[str, Any] = {"Aliases": opts.network_alias} if opts.network_alias else {}
        if opts.ip:
            endpoint["IPAMConfig"] = {"IPv4Address": opts.ip}
        body["NetworkingConfig"] = {"EndpointsConfig": {opts.network or "default": endpoint}}
    return CreateRequest(opts.name, opts.platform, body)

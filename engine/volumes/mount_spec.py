"""Docker's ways of asking for a mount, parsed into one structured form the container code can use.

- `-v` / HostConfig.Binds: `name:/ctr[:mode]` (volume), `/host:/ctr[:mode]` (bind), `/ctr` (anonymous volume);
- `--mount` / HostConfig.Mounts: the Mount JSON (Type, Source, Target, ReadOnly, BindOptions, VolumeOptions,
  TmpfsOptions); `parse_mount_flag` turns the CLI's `type=...,src=...,dst=...` CSV into that JSON;
- `--volumes-from <container>[:ro|rw]`, resolved through a lookup callback;
- `resolve_mounts` puts them together with Docker's precedence and its "Duplicate mount point" error.

Rules and messages follow moby's volume/mounts/linux_parser.go and validate.go, and docker/cli's
opts/mount.go for the CSV.  Every error is InvalidParameter (400).
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.volumes.errors import InvalidParameter

RW_MODES = frozenset({"rw", "ro", "ro-non-recursive", "ro-force-recursive", "rro"})
LABEL_MODES = frozenset({"z", "Z"})  # SELinux relabelling: accepted, nothing to do without SELinux
PROPAGATION_MODES = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})
COPY_MODES = frozenset({"nocopy"})
CONSISTENCY_MODES = frozenset({"consistent", "cached", "delegated"})  # macOS-only hints; accepted
DEFAULT_PROPAGATION = "rprivate"
TMPFS_OPTION_KEYS = frozenset({"exec", "noexec"})
SUPPORTED_TYPES = ("bind", "volume", "tmpfs")


@dataclass(frozen=True)
class MountSpec:
    """One mount a container asked for, validated.

    type:        "bind", "volume" or "tmpfs"
    target:      cleaned absolute path in the container
    source:      bind: cleaned host path; volume: its name ("" = anonymous, the daemon creates one)
    read_only:   mount read-only
    mode:        the `-v` mode string as given (MountPoint.Mode in inspect)
    propagation: bind only ("rprivate" unless asked)
    copy_data:   volume only: copy the image's content in on first use (False for `nocopy`)
    driver / driver_options / labels: volume only, for creating a volume that does not exist yet
    subpath:     volume only: mount this relative directory of the volume
    create_source: bind from `-v`: a missing host directory is created (Docker's legacy behaviour)
    non_recursive: bind only: no MS_REC
    tmpfs_options: tmpfs only: the mount data string (`size=64m,mode=1777,...`)
    """

    type: str
    target: str
    source: str = ""
    read_only: bool = False
    mode: str = ""
    propagation: str = ""
    copy_data: bool = True
    driver: str = ""
    driver_options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    subpath: str = ""
    create_source: bool = False
    non_recursive: bool = False
    tmpfs_options: str = ""

    @property
    def anonymous(self) -> bool:
        return self.type == "volume" and not self.source

    def mount_point(self, host_source: str = "", volume_driver: str = "local") -> dict[str, Any]:
        """The container inspect `Mounts[]` entry (definitions/MountPoint); ``host_source`` is a volume's _data."""
        is_volume = self.type == "volume"
        return {
            "Type": self.type,
            "Name": self.source if is_volume else "",
            "Source": host_source if is_volume else ("" if self.type == "tmpfs" else self.source),
            "Destination": self.target,
            "Driver": (self.driver or volume_driver) if is_volume else "",
            "Mode": self.mode,
            "RW": not self.read_only,
            "Propagation": self.propagation,
        }


    def oci_mount(self, host_source: str = "") -> dict[str, Any]:
        """The OCI runtime-spec mount; ``host_source`` is the volume's host path (from VolumeService.mount_for).

        Binds and volumes are recursive binds (unless NonRecursive); tmpfs gets
        Docker's defaults `noexec,nosuid,nodev` under the asked options (moby oci_linux.go setMounts).
        """
        if self.type == "tmpfs":
            options = merge_tmpfs_options(["noexec", "nosuid", "nodev", *_mode_words(self.tmpfs_options)])
            return {"destination": self.target, "type": "tmpfs", "source": "tmpfs", "options": options}
        source = host_source if self.type == "volume" else self.source
        if self.type == "volume" and not source:
            raise InvalidParameter(f"volume mount on {self.target} has no host path yet: mount the volume first")
        options = ["bind" if self.non_recursive else "rbind", "ro" if self.read_only else "rw"]
        options.append(self.propagation or DEFAULT_PROPAGATION)
        return {"destination": self.target, "type": "bind", "source": source, "options": options}


def merge_tmpfs_options(words: Sequence[str]) -> list[str]:
    """Later words win: `exec` cancels `noexec`, `size=2m` replaces `size=1m` (moby mount.MergeTmpfsOptions)."""
    merged: list[str] = []
    for word in words:
        key = word.partition("=")[0]
        opposite = key[2:] if key.startswith("no") else "no" + key
        merged = [w for w in merged if w.partition("=")[0] not in (key, opposite)]
        merged.append(word)
    # exec/suid/dev only cancel their "no" form; on their own they are the kernel's defaults.
    return [w for w in merged if w not in ("exec", "suid", "dev")]


# -- `-v` -------------------------------------------------------------------


def _mode_words(mode: str) -> list[str]:
    return mode.split(",") if mode else []


def valid_mode(mode: str) -> bool:
    """moby linuxValidMountMode: known words only, at most one of each kind."""
    counts = {"rw": 0, "label": 0, "propagation": 0, "copy": 0, "consistency": 0}
    for word in _mode_words(mode):
        for kind, words in (("rw", RW_MODES), ("label", LABEL_MODES), ("propagation", PROPAGATION_MODES),
                            ("copy", COPY_MODES), ("consistency", CONSISTENCY_MODES)):
            if word in words:
                counts[kind] += 1
                break
        else:
            return False
    return all(n <= 1 for n in counts.values())


def _invalid_spec(raw: str) -> InvalidParameter:
    return InvalidParameter(f"invalid volume specification: '{raw}'")


def parse_bind(raw: str, volume_driver: str = "") -> MountSpec:
    """One `-v` / HostConfig.Binds entry.  A bind's missing host directory is not an error here."""
    parts = raw.split(":", 3)
    if not parts[0]:
        raise _invalid_spec(raw)
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):
            # `/foo:rw` is a destination and a mode: an anonymous volume cannot take a mode.
            raise _invalid_spec(raw)
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise _invalid_spec(raw)
    if not valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    words = _mode_words(mode)
    mount: dict[str, Any] = {
        "Type": "bind" if source.startswith("/") else "volume",
        "Source": source,
        "Target": target,
        "ReadOnly": any(w in RW_MODES and w != "rw" for w in words),
    }
    if volume_driver and mount["Type"] == "volume":
        mount["VolumeOptions"] = {"DriverConfig": {"Name": volume_driver}}
    if "nocopy" in words:
        mount.setdefault("VolumeOptions", {})["NoCopy"] = True
    propagation = next((w for w in words if w in PROPAGATION_MODES), "")
    if propagation:
        mount["BindOptions"] = {"Propagation": propagation}
    try:
        spec = _from_mount(mount, check_bind_source=False)
    except InvalidParameter as exc:
        raise InvalidParameter(f"invalid volume specification: '{raw}': {exc}") from exc
    return replace(spec, mode=mode, create_source=spec.type == "bind")


# -- HostConfig.Mounts ------------------------------------------------------


def parse_mount(mount: Mapping[str, Any]) -> MountSpec:
    """One HostConfig.Mounts entry (the API's Mount JSON); a bind's host path must exist."""
    return _from_mount(mount, check_bind_source=True)


class _MountConfigError(InvalidParameter):
    def __init__(self, mount_type: str, why: str) -> None:
        super().__init__(f'invalid mount config for type "{mount_type}": {why}')


def _validate_target(mount_type: str, target: str) -> None:
    if not target:
        raise _MountConfigError(mount_type, "field Target must not be empty")
    if posixpath.normpath(target) in ("/", "//"):
        raise _MountConfigError(mount_type, "invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise _MountConfigError(mount_type, f"invalid mount path: '{target}' mount path must be absolute")


def is_local_subpath(path: str) -> bool:
    """Go's filepath.IsLocal: relative, non-empty, never climbing above its start."""
    if not path or path.startswith("/"):
        return False
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def _from_mount(mount: Mapping[str, Any], check_bind_source: bool) -> MountSpec:
    mount_type = str(mount.get("Type") or "")
    target = str(mount.get("Target") or "")
    source = str(mount.get("Source") or "")
    read_only = bool(mount.get("ReadOnly"))
    bind_opts: Mapping[str, Any] | None = mount.get("BindOptions")
    volume_opts: Mapping[str, Any] | None = mount.get("VolumeOptions")
    tmpfs_opts: Mapping[str, Any] | None = mount.get("TmpfsOptions")
    _validate_target(mount_type, target)
    clean_target = posixpath.normpath(target)
    if clean_target.startswith("//"):
        clean_target = clean_target[1:]

    if mount_type == "bind":
        if not source:
            raise _MountConfigError(mount_type, "field Source must not be empty")
        propagation = str((bind_opts or {}).get("Propagation") or "")
        if propagation and propagation not in PROPAGATION_MODES:
            raise _MountConfigError(mount_type, f"invalid propagation mode: {propagation}")
        if volume_opts is not None:
            raise _MountConfigError(mount_type, "field VolumeOptions must not be specified")
        if not source.startswith("/"):
            raise _MountConfigError(mount_type, f"invalid mount path: '{source}' mount path must be absolute")
        create = bool((bind_opts or {}).get("CreateMountpoint"))
        if check_bind_source and not create and not Path(source).exists():
            raise _MountConfigError(mount_type, f"bind source path does not exist: {source}")
        return MountSpec(
            type="bind", target=clean_target, source=posixpath.normpath(source), read_only=read_only,
            propagation=propagation or DEFAULT_PROPAGATION, create_source=create,
            non_recursive=bool((bind_opts or {}).get("NonRecursive")),
        )

    if mount_type == "volume":
        if bind_opts is not None:
            raise _MountConfigError(mount_type, "field BindOptions must not be specified")
        opts = volume_opts or {}
        subpath = str(opts.get("Subpath") or "")
        if subpath:
            if not source:
                raise _MountConfigError(mount_type, "must not set Subpath when using anonymous volumes")
            if not is_local_subpath(subpath):
                raise _MountConfigError(mount_type, "subpath must be a relative path within the volume")
        if read_only and not source:
            raise _MountConfigError(mount_type, "must not set ReadOnly mode when using anonymous volumes")
        driver_config: Mapping[str, Any] = opts.get("DriverConfig") or {}
        return MountSpec(
            type="volume", target=clean_target, source=source, read_only=read_only,
            copy_data=not opts.get("NoCopy"), driver=str(driver_config.get("Name") or ""),
            driver_options={str(k): str(v) for k, v in (driver_config.get("Options") or {}).items()},
            labels={str(k): str(v) for k, v in (opts.get("Labels") or {}).items()}, subpath=subpath,
        )

    if mount_type == "tmpfs":
        if bind_opts is not None:
            raise _MountConfigError(mount_type, "field BindOptions must not be specified")
        if source:
            raise _MountConfigError(mount_type, "field Source must not be specified")
        try:
            data = tmpfs_options(tmpfs_opts, read_only)
        except InvalidParameter as exc:
            raise _MountConfigError(mount_type, str(exc)) from exc
        return MountSpec(type="tmpfs", target=clean_target, read_only=read_only, tmpfs_options=data)

    if mount_type in ("image", "npipe", "cluster"):
        raise _MountConfigError(mount_type, "mount type not supported by Berth")
    raise _MountConfigError(mount_type, "mount type unknown")


def tmpfs_options(opts: Mapping[str, Any] | None, read_only: bool = False) -> str:
    """TmpfsOptions → tmpfs mount data (moby ConvertTmpfsOptions): `ro`, `mode=` octal, `size=` with a suffix."""
    words = ["ro"] if read_only else []
    opts = opts or {}
    mode = int(opts.get("Mode") or 0)
    if mode:
        words.append(f"mode={mode:o}")
    size = int(opts.get("SizeBytes") or 0)
    if size:
        suffix = ""
        for unit, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                size, suffix = size // divisor, unit
                break
        words.append(f"size={size}{suffix}")
    for option in opts.get("Options") or []:
        if not 1 <= len(option) <= 2:
            raise InvalidParameter("invalid option array length")
        if option[0] not in TMPFS_OPTION_KEYS:
            raise InvalidParameter(f"invalid option: {option[0]}")
        words.append("=".join(option))
    return ",".join(words)


# -- `--mount` CSV (docker/cli opts/mount.go) ---------------------------------

_BOOL_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_BOOL_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_RAM = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?$")


def _parse_bool(key: str, value: str) -> bool:
    if value in _BOOL_TRUE:
        return True
    if value in _BOOL_FALSE:
        return False
    raise InvalidParameter(f"invalid value for {key}: {value}")


def ram_in_bytes(value: str) -> int:
    """go-units RAMInBytes: `64m`, `1g`, `512k`, `100` (binary multiples)."""
    m = _RAM.match(value.strip())
    if not m:
        raise InvalidParameter(f"invalid size: '{value}'")
    factor = 1 << (10 * " kmgtp".index(m.group(2).lower() or " "))
    return int(float(m.group(1)) * factor)


def parse_mount_flag(value: str) -> dict[str, Any]:
    """`--mount type=volume,src=data,dst=/data,readonly,volume-opt=o=size=1m` → a HostConfig.Mounts entry."""
    mount: dict[str, Any] = {"Type": "volume"}
    volume: dict[str, Any] = {}
    bind: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}
    fields = next(csv.reader([value]), [])
    for item in fields:
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if not eq:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                volume["NoCopy"] = True
            elif key == "bind-nonrecursive":
                bind["NonRecursive"] = True
            else:
                raise InvalidParameter(f"invalid field '{item}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = val
        elif key in ("source", "src"):
            mount["Source"] = val
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _parse_bool(key, val)
        elif key == "consistency":
            mount["Consistency"] = val
        elif key == "bind-propagation":
            bind["Propagation"] = val
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _parse_bool(key, val)
        elif key == "bind-create-src":
            bind["CreateMountpoint"] = _parse_bool(key, val)
        elif key == "volume-nocopy":
            volume["NoCopy"] = _parse_bool(key, val)
        elif key == "volume-subpath":
            volume["Subpath"] = val
        elif key == "volume-driver":
            volume.setdefault("DriverConfig", {})["Name"] = val
        elif key in ("volume-opt", "volume-label"):
            opt_key, opt_eq, opt_val = val.partition("=")
            if not opt_eq:
                raise InvalidParameter(f"invalid value for {key}: {val}")
            if key == "volume-opt":
                volume.setdefault("DriverConfig", {}).setdefault("Options", {})[opt_key] = opt_val
            else:
                volume.setdefault("Labels", {})[opt_key] = opt_val
        elif key == "tmpfs-size":
            try:
                tmpfs["SizeBytes"] = ram_in_bytes(val)
            except InvalidParameter as exc:
                raise InvalidParameter(f"invalid value for {key}: {val}") from exc
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(val, 8)
            except ValueError as exc:
                raise InvalidParameter(f"invalid value for {key}: {val}") from exc
        else:
            raise InvalidParameter(f"unexpected key '{key}' in '{item}'")
    if not mount.get("Target"):
        raise InvalidParameter("target is required")
    for prefix, opts, name in (("volume", volume, "VolumeOptions"), ("bind", bind, "BindOptions"),
                               ("tmpfs", tmpfs, "TmpfsOptions")):
        if not opts:
            continue
        if mount["Type"] != prefix:
            raise InvalidParameter(f"cannot mix '{prefix}-*' options with mount type '{mount['Type']}'")
        mount[name] = opts
    return mount


# -- --volumes-from ----------------------------------------------------------


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """`container[:mode]` → (container, mode); mode is "rw" when not given (moby ParseVolumesFrom)."""
    if not spec:
        raise InvalidParameter("volumes-from specification cannot be an empty string")
    container, _, mode = spec.partition(":")
    if not mode:
        return container, "rw"
    words = _mode_words(mode)
    # Propagation and copy modes belong to the source container's mounts, not to the import.
    if not valid_mode(mode) or any(w in PROPAGATION_MODES or w in COPY_MODES for w in words):
        raise InvalidParameter(f"invalid mode: {mode}")
    return container, mode


VolumesFromLookup = Callable[[str], Sequence[MountSpec]]


def resolve_volumes_from(spec: str, lookup: VolumesFromLookup) -> list[MountSpec]:
    """The source container's mounts (from ``lookup``, which raises if there is no such container).

    `:ro` makes every imported mount read-only; `:rw` (the default) keeps each one's own mode.
    """
    container, mode = parse_volumes_from(spec)
    read_only = any(w in RW_MODES and w != "rw" for w in _mode_words(mode))
    return [replace(m, read_only=m.read_only or read_only) for m in lookup(container)]


# -- everything together -------------------------------------------------------


def duplicate_mount_point(target: str) -> InvalidParameter:
    # moby daemon/volumes.go says it with a capital D; clients match on it.
    return InvalidParameter(f"Duplicate mount point: {target}")


def resolve_mounts(
    binds: Iterable[str] = (),
    mounts: Iterable[Mapping[str, Any]] = (),
    volumes_from: Iterable[str] = (),
    lookup: VolumesFromLookup | None = None,
    tmpfs: Mapping[str, str] | None = None,
    image_volumes: Iterable[str] = (),
    volume_driver: str = "",
) -> list[MountSpec]:
    """A container's mounts with Docker's precedence (moby registerMountPoints), sorted by target.

    volumes-from first (a later one wins), then Binds and Mounts replace them; two
    Binds/Mounts/Tmpfs entries on one target are an error.  HostConfig.Tmpfs
    entries come back as tmpfs specs.  Image VOLUMEs become anonymous volumes
    where nothing else is mounted.
    """
    by_target: dict[str, MountSpec] = {}
    for spec in volumes_from:
        if lookup is None:
            raise InvalidParameter("volumes-from needs a container lookup")
        for m in resolve_volumes_from(spec, lookup):
            by_target[m.target] = m
    explicit: set[str] = set()
    tmpfs_targets = {posixpath.normpath(t) for t in (tmpfs or {})}

    def claim(spec: MountSpec) -> None:
        if spec.target in explicit or (spec.type != "tmpfs" and spec.target in tmpfs_targets):
            raise duplicate_mount_point(spec.target)
        explicit.add(spec.target)
        by_target[spec.target] = spec

    for raw in binds:
        claim(parse_bind(raw, volume_driver))
    for mount in mounts:
        claim(parse_mount(mount))
    for target, options in (tmpfs or {}).items():
        _validate_target("tmpfs", target)
        claim(MountSpec(type="tmpfs", target=posixpath.normpath(target), tmpfs_options=options))
    for target in image_volumes:
        clean = posixpath.normpath(target)
        if clean not in by_target:
            by_target[clean] = MountSpec(type="volume", target=clean)
    return [by_target[t] for t in sorted(by_target)]

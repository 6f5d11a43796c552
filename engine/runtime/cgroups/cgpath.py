"""Turn an OCI ``linux.cgroupsPath`` into one path per hierarchy.

Semantics follow runc (runtime-spec config-linux.md#cgroups-path):

- absolute (``/a/b``): relative to the root of every hierarchy;
- relative (``a/b``), or absent (``berth/<id>``): nested under the *caller's*
  own cgroup in each hierarchy, read from /proc/self/cgroup.  In v1 the
  caller may sit in different cgroups per controller, so the result differs
  per hierarchy.  On a pure v2 host the base is the *parent* of the caller's
  cgroup (:func:`v2_nesting_base`), as runc's fs2 driver does;
- systemd form ``slice:prefix:name``: Berth has no systemd driver, so it is
  mapped to the path systemd would give the unit, ``/<expanded slice>/
  <prefix>-<name>.scope`` (``a-b.slice`` expands to ``a.slice/a-b.slice``,
  an empty slice means ``system.slice``, like runc's systemd driver), then
  treated as absolute;
- resolved form ``ctrl,ctrl:/path;ctrl:/path;:/path`` (one entry per
  distinct path, like the lines of /proc/<pid>/cgroup, ``:`` alone for the
  unified hierarchy): what :func:`format_resolved` writes into ``Cgroup.path``
  when the paths differ per hierarchy, so a later runtime verb, run from any
  cgroup, reopens exactly the same directories.
"""

from __future__ import annotations

import posixpath

from engine.runtime.abcs import Iterable, Mapping
from engine.runtime.cgroups.errors import InvalidResources

# An entry like "memory,cpu:/path" (^[a-z0-9_,]*:/), checked without re: importing it (and enum)
# is ~2 ms of every berth-runtime call.
_CONTROLLER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_,")


def _is_resolved_entry(entry: str) -> bool:
    controllers, colon, path = entry.partition(":")
    return bool(colon) and path.startswith("/") and all(c in _CONTROLLER_CHARS for c in controllers)


def _clean(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidResources(f"cgroupsPath must not contain '..': {path!r}")
    return "/" + "/".join(parts)


def expand_slice(slice_: str) -> str:
    """systemd's slice nesting: ``a-b-c.slice`` lives in ``/a.slice/a-b.slice/a-b-c.slice``."""
    if not slice_ or slice_ == "-.slice":
        return "/"
    if not slice_.endswith(".slice") or "/" in slice_:
        raise InvalidResources(f"invalid systemd slice name: {slice_!r}")
    stem = slice_[: -len(".slice")]
    if stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise InvalidResources(f"invalid systemd slice name: {slice_!r}")
    path, prefix = "", ""
    for comp in stem.split("-"):
        prefix = f"{prefix}-{comp}" if prefix else comp
        path += f"/{prefix}.slice"
    return path


def systemd_to_path(spec: str) -> str:
    """Map ``slice:prefix:name`` to the cgroup path of the unit systemd would create."""
    slice_, prefix, name = spec.split(":")
    if not name:
        raise InvalidResources(f"systemd cgroupsPath needs a unit name: {spec!r}")
    unit = name if name.endswith(".slice") else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
    return _clean(expand_slice(slice_ or "system.slice") + "/" + unit)


def is_resolved_form(spec: str) -> bool:
    return bool(spec) and all(_is_resolved_entry(e) for e in spec.split(";"))


def is_systemd_form(spec: str) -> bool:
    return spec.count(":") == 2 and not is_resolved_form(spec)


def v2_nesting_base(own_path: str) -> str:
    """Where relative paths nest on a pure v2 host: the parent of the caller's cgroup.

    The caller's own cgroup holds at least the caller, and v2's "no internal
    processes" rule (cgroup-v2.rst) forbids enabling a domain controller in a
    cgroup that holds processes: a container cgroup below it could never get
    memory, cpu, io or pids.  Its parent holds none (a systemd scope or
    service sits in a slice; PID 1 is in /init.scope, not the root), and the
    root is exempt from the rule.  runc's fs2 defaultDirPath does the same.
    """
    return posixpath.dirname("/" + own_path.strip("/"))


def resolve(spec: str | None, container_id: str, keys: Iterable[str], own: Mapping[str, str]) -> dict[str, str]:
    """Per hierarchy key (a v1 controller, or "" for unified), the cgroup path from its root."""
    keys = list(keys)
    if spec is None or spec == "":
        spec = f"berth/{container_id}"
    if is_resolved_form(spec):
        table: dict[str, str] = {}
        for entry in spec.split(";"):
            names, _, path = entry.partition(":")
            for n in names.split(",") if names else [""]:
                table[n] = _clean(path)
        missing = [k for k in keys if k not in table]
        if missing:
            raise InvalidResources(f"cgroupsPath {spec!r} names no path for {missing}")
        return {k: table[k] for k in keys}
    if is_systemd_form(spec):
        spec = systemd_to_path(spec)
    if spec.startswith("/"):
        path = _clean(spec)
        return dict.fromkeys(keys, path)
    rel = _clean(spec)
    return {k: _clean(own.get(k, "/") + rel) for k in keys}


def format_resolved(paths: Mapping[str, str]) -> str:
    """The store-able form of per-hierarchy paths: a plain path when all agree."""
    distinct = set(paths.values())
    if len(distinct) == 1:
        return distinct.pop()
    by_path: dict[str, list[str]] = {}
    for key in sorted(paths):
        by_path.setdefault(paths[key], []).append(key)
    return ";".join(f"{','.join(k for k in keys)}:{p}" for p, keys in sorted(by_path.items()))

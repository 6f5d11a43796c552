"""A light check of config.json on `create`: the fields the runtime reads, with field-named errors.

The runtime-spec's JSON Schema (schema/config-schema.json) is the reference
and tests validate against it; the runtime itself does not ship jsonschema.
It checks, before anything is made, each field it will act on: its JSON type,
that paths which must be absolute are (config.md#mounts "destination MUST
be an absolute path", config.md#process "cwd MUST be an absolute path"),
and the enumerations it switches on (namespace types, device types,
propagation).  The first problem found is raised as one InvalidSpec naming
the field by its JSON path, e.g. ``mounts[7].destination``, as runc's
decoder names ``Process.process.args`` in its errors.
"""

from __future__ import annotations

from .abcs import Callable, Mapping
from .errors import InvalidSpec

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
DEVICE_TYPES = ("c", "b", "u", "p")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
_UINT32_MAX = 2**32 - 1

Check = Callable[[str, "Any"], object]  # return values (the checked container) are ignored


def _describe(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _fail(field: str, wanted: str, value: Any) -> None:
    raise InvalidSpec(f"config.json: {field} must be {wanted} (got {_describe(value)} {value!r:.60})")


def string(field: str, value: Any) -> None:
    if not isinstance(value, str):
        _fail(field, "a string", value)


def boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(field, "a boolean", value)


def integer(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(field, "an integer", value)


def uint32(field: str, value: Any) -> None:
    integer(field, value)
    if not 0 <= value <= _UINT32_MAX:
        _fail(field, "an integer in 0..2^32-1", value)


def absolute_path(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        _fail(field, "an absolute path", value)


def obj(field: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(field, "an object", value)
    return value  # type: ignore[no-any-return]


def array(field: str, value: Any, each: Check | None = None) -> list[Any]:
    if not isinstance(value, list):
        _fail(field, "an array", value)
    if each is not None:
        for i, item in enumerate(value):
            each(f"{field}[{i}]", item)
    return value  # type: ignore[no-any-return]


def one_of(choices: tuple[str, ...]) -> Check:
    def check(field: str, value: Any) -> None:
        if value not in choices:
            _fail(field, "one of " + ", ".join(choices), value)

    return check


def string_map(field: str, value: Any) -> None:
    for key, item in obj(field, value).items():
        string(f"{field}.{key}", item)


def optional(parent: Mapping[str, Any], prefix: str, key: str, check: Check) -> None:
    """Check ``parent[key]`` if present (null counts as absent, as Go's decoder treats it)."""
    if parent.get(key) is not None:
        check(f"{prefix}{key}", parent[key])


def required(parent: Mapping[str, Any], prefix: str, key: str, check: Check) -> None:
    if parent.get(key) is None:
        raise InvalidSpec(f"config.json: {prefix}{key} is required")
    check(f"{prefix}{key}", parent[key])


# --- sections ---------------------------------------------------------------------------


def check_config(spec: Mapping[str, Any], need_process: bool = True) -> None:
    """Every field the runtime uses, in document order; raises InvalidSpec on the first problem."""
    required(spec, "", "ociVersion", string)
    required(spec, "", "root", _root)
    if need_process:
        required(spec, "", "process", _process)
    else:
        optional(spec, "", "process", _process)
    optional(spec, "", "hostname", string)
    optional(spec, "", "domainname", string)
    optional(spec, "", "mounts", lambda f, v: array(f, v, _mount))
    optional(spec, "", "hooks", _hooks)
    optional(spec, "", "annotations", string_map)
    optional(spec, "", "linux", _linux)


def _root(field: str, value: Any) -> None:
    root = obj(field, value)
    required(root, f"{field}.", "path", string)
    if not root["path"]:
        raise InvalidSpec(f"config.json: {field}.path must not be empty")
    optional(root, f"{field}.", "readonly", boolean)


def check_process(process: Mapping[str, Any], field: str = "process") -> None:
    """A process object alone: config.json's ``process`` or an `exec --process` file."""
    _process(field, process)


def _process(field: str, value: Any) -> None:
    process = obj(field, value)
    p = f"{field}."
    optional(process, p, "terminal", boolean)
    required(process, p, "args", lambda f, v: array(f, v, string))
    if not process["args"]:
        raise InvalidSpec(f"config.json: {p}args must not be empty")
    optional(process, p, "env", lambda f, v: array(f, v, string))
    # REQUIRED by the schema; Berth's callers may omit it and get "/" (process.py), as before.
    optional(process, p, "cwd", absolute_path)
    optional(process, p, "user", _user)
    optional(process, p, "capabilities", _capabilities)
    optional(process, p, "rlimits", lambda f, v: array(f, v, _rlimit))
    optional(process, p, "noNewPrivileges", boolean)
    optional(process, p, "oomScoreAdj", integer)
    optional(process, p, "consoleSize", _console_size)


def _user(field: str, value: Any) -> None:
    user = obj(field, value)
    for key in ("uid", "gid", "umask"):
        optional(user, f"{field}.", key, uint32)
    optional(user, f"{field}.", "additionalGids", lambda f, v: array(f, v, uint32))


def _capabilities(field: str, value: Any) -> None:
    caps = obj(field, value)
    for key in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        optional(caps, f"{field}.", key, lambda f, v: array(f, v, string))


def _rlimit(field: str, value: Any) -> None:
    rlimit = obj(field, value)
    required(rlimit, f"{field}.", "type", string)
    required(rlimit, f"{field}.", "soft", integer)
    required(rlimit, f"{field}.", "hard", integer)


def _console_size(field: str, value: Any) -> None:
    size = obj(field, value)
    required(size, f"{field}.", "height", uint32)
    required(size, f"{field}.", "width", uint32)


def _mount(field: str, value: Any) -> None:
    mount = obj(field, value)
    # Required and absolute (config.md#mounts).  runc 1.1 only warns about a relative one
    # and then mounts somewhere unexpected; Berth refuses it before anything is made.
    required(mount, f"{field}.", "destination", absolute_path)
    optional(mount, f"{field}.", "type", string)
    optional(mount, f"{field}.", "source", string)
    optional(mount, f"{field}.", "options", lambda f, v: array(f, v, string))


def _hooks(field: str, value: Any) -> None:
    hooks = obj(field, value)
    for name in HOOK_NAMES:
        optional(hooks, f"{field}.", name, lambda f, v: array(f, v, _hook))


def _hook(field: str, value: Any) -> None:
    hook = obj(field, value)
    required(hook, f"{field}.", "path", absolute_path)
    optional(hook, f"{field}.", "args", lambda f, v: array(f, v, string))
    optional(hook, f"{field}.", "env", lambda f, v: array(f, v, string))
    optional(hook, f"{field}.", "timeout", integer)
    if hook.get("timeout") is not None and hook["timeout"] <= 0:
        _fail(f"{field}.timeout", "greater than zero", hook["timeout"])


def _linux(field: str, value: Any) -> None:
    linux = obj(field, value)
    p = f"{field}."
    optional(linux, p, "namespaces", lambda f, v: array(f, v, _namespace))
    for key in ("uidMappings", "gidMappings"):
        optional(linux, p, key, lambda f, v: array(f, v, _id_mapping))
    optional(linux, p, "devices", lambda f, v: array(f, v, _device))
    optional(linux, p, "cgroupsPath", string)
    optional(linux, p, "resources", _resources)
    optional(linux, p, "rootfsPropagation", one_of(PROPAGATIONS))
    optional(linux, p, "maskedPaths", lambda f, v: array(f, v, absolute_path))
    optional(linux, p, "readonlyPaths", lambda f, v: array(f, v, absolute_path))
    optional(linux, p, "sysctl", string_map)
    optional(linux, p, "seccomp", _seccomp)


def _namespace(field: str, value: Any) -> None:
    ns = obj(field, value)
    required(ns, f"{field}.", "type", one_of(NAMESPACE_TYPES))
    optional(ns, f"{field}.", "path", absolute_path)


def _id_mapping(field: str, value: Any) -> None:
    mapping = obj(field, value)
    for key in ("containerID", "hostID", "size"):
        required(mapping, f"{field}.", key, uint32)


def _device(field: str, value: Any) -> None:
    device = obj(field, value)
    required(device, f"{field}.", "path", absolute_path)
    required(device, f"{field}.", "type", one_of(DEVICE_TYPES))
    for key in ("major", "minor", "fileMode"):
        optional(device, f"{field}.", key, integer)
    for key in ("uid", "gid"):
        optional(device, f"{field}.", key, uint32)


def _resources(field: str, value: Any) -> None:
    resources = obj(field, value)
    p = f"{field}."
    optional(resources, p, "devices", lambda f, v: array(f, v, _device_rule))
    optional(resources, p, "memory", lambda f, v: _integers(f, v, ("limit", "reservation", "swap", "kernel")))
    optional(resources, p, "cpu", lambda f, v: _integers(f, v, ("shares", "quota", "period")))
    optional(resources, p, "pids", lambda f, v: _integers(f, v, ("limit",)))


def _integers(field: str, value: Any, keys: tuple[str, ...]) -> None:
    section = obj(field, value)
    for key in keys:
        optional(section, f"{field}.", key, integer)


def _device_rule(field: str, value: Any) -> None:
    rule = obj(field, value)
    required(rule, f"{field}.", "allow", boolean)
    optional(rule, f"{field}.", "type", one_of(("a", "c", "b")))
    optional(rule, f"{field}.", "access", string)


def _seccomp(field: str, value: Any) -> None:
    seccomp = obj(field, value)
    required(seccomp, f"{field}.", "defaultAction", string)
    optional(seccomp, f"{field}.", "architectures", lambda f, v: array(f, v, string))
    optional(seccomp, f"{field}.", "flags", lambda f, v: array(f, v, string))
    optional(seccomp, f"{field}.", "syscalls", lambda f, v: array(f, v, _syscall_rule))


def _syscall_rule(field: str, value: Any) -> None:
    rule = obj(field, value)
    required(rule, f"{field}.", "names", lambda f, v: array(f, v, string))
    required(rule, f"{field}.", "action", string)

"""config_check: the runtime's own light check agrees with the runtime-spec JSON Schema on what it covers."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from engine.runtime.config_check import check_config
from engine.runtime.default_spec import default_spec
from engine.runtime.errors import InvalidSpec
from engine.runtime.seccomp import default_seccomp

from .oci_schemas import validate


def _spec() -> dict[str, Any]:
    spec = copy.deepcopy(default_spec(terminal=False, args=["sh"]))
    spec["linux"]["seccomp"] = default_seccomp()
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    spec["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
    return spec


def test_a_complete_spec_passes_both() -> None:
    spec = _spec()
    validate(spec, "config-schema.json")
    check_config(spec)


# Each breaks the runtime-spec schema; the runtime must refuse it naming this field.
BROKEN: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "ociVersion": ("ociVersion", lambda s: s.update(ociVersion=1)),
    "root.path": ("root.path", lambda s: s["root"].pop("path")),
    "root.readonly": ("root.readonly", lambda s: s["root"].update(readonly="yes")),
    "process.args": ("process.args", lambda s: s["process"].update(args="sh")),
    "process.args item": ("process.args[1]", lambda s: s["process"].update(args=["sh", 1])),
    "process.env": ("process.env[0]", lambda s: s["process"].update(env=[{"A": "1"}])),
    "process.cwd": ("process.cwd", lambda s: s["process"].update(cwd=7)),
    "process.user.gid": ("process.user.gid", lambda s: s["process"]["user"].update(gid=-1)),
    "process.rlimits": ("process.rlimits[0].soft", lambda s: s["process"]["rlimits"][0].update(soft="1")),
    "process.capabilities": ("process.capabilities.bounding", lambda s: s["process"]["capabilities"]
                             .update(bounding="CAP_KILL")),
    "process.terminal": ("process.terminal", lambda s: s["process"].update(terminal="no")),
    "hostname": ("hostname", lambda s: s.update(hostname=1)),
    "mounts": ("mounts", lambda s: s.update(mounts={})),
    "mount destination": ("mounts[0].destination", lambda s: s["mounts"][0].pop("destination")),
    "mount options": ("mounts[1].options", lambda s: s["mounts"][1].update(options="ro")),
    "namespace type": ("linux.namespaces[0].type", lambda s: s["linux"]["namespaces"][0].update(type="bogus")),
    "uidMappings": ("linux.uidMappings[0].size", lambda s: s["linux"]["uidMappings"][0].update(size="1")),
    "rootfsPropagation": ("linux.rootfsPropagation", lambda s: s["linux"].update(rootfsPropagation="sideways")),
    "device type": ("linux.devices[0].type", lambda s: s["linux"].update(devices=[{"path": "/dev/x", "type": "z"}])),
    "device path": ("linux.devices[0].path", lambda s: s["linux"].update(devices=[{"type": "c"}])),
    "memory limit": ("linux.resources.memory.limit", lambda s: s["linux"]["resources"]
                     .update(memory={"limit": "32m"})),
    "pids limit": ("linux.resources.pids.limit", lambda s: s["linux"]["resources"].update(pids={"limit": 1.5})),
    "sysctl": ("linux.sysctl.net.ipv4.ip_forward", lambda s: s["linux"].update(sysctl={"net.ipv4.ip_forward": 1})),
    "seccomp action": ("linux.seccomp.defaultAction", lambda s: s["linux"]["seccomp"].pop("defaultAction")),
    "hook path": ("hooks.prestart[0].path", lambda s: s["hooks"]["prestart"][0].pop("path")),
    "hook timeout": ("hooks.prestart[0].timeout", lambda s: s["hooks"]["prestart"][0].update(timeout=0)),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_schema_invalid_field_is_refused_by_name(case: str) -> None:
    field, breaks = BROKEN[case]
    spec = _spec()
    breaks(spec)
    with pytest.raises(jsonschema.ValidationError):
        validate(spec, "config-schema.json")
    with pytest.raises(InvalidSpec) as refused:
        check_config(spec)
    assert str(refused.value).startswith(f"config.json: {field} ")


RELATIVE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "mounts[0].destination": lambda s: s["mounts"][0].update(destination="proc"),
    "process.cwd": lambda s: s["process"].update(cwd="tmp"),
    "linux.maskedPaths[0]": lambda s: s["linux"]["maskedPaths"].__setitem__(0, "proc/kcore"),
}


@pytest.mark.parametrize("field", list(RELATIVE))
def test_relative_paths_the_spec_requires_absolute_are_refused(field: str) -> None:
    spec = _spec()
    RELATIVE[field](spec)
    with pytest.raises(InvalidSpec, match="^" + re.escape(f"config.json: {field} must be an absolute path")):
        check_config(spec)

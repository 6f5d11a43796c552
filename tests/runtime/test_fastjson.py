"""fastjson (json's C scanner/encoder without the json package) against json, and the run path's imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime import fastjson
from engine.runtime.cgroups.cgpath import is_resolved_form
from engine.runtime.default_spec import default_spec
from engine.runtime.errors import InvalidSpec
from engine.runtime.spec import check_container_id

REPO = Path(__file__).resolve().parents[2]

VALUES: list[object] = [
    default_spec(),
    {"a": [1, 2.5, None, True, False, "é\u2028x\"\n\t"], "b": {"z": 1, "a": float("inf"), "n": -0.0}},
    "text", 3, -7.25, [], {}, [[{}]], None,
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_and_loads_match_json(value: object) -> None:
    assert fastjson.dumps(value) == json.dumps(value)
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert fastjson.dumps(value, sort_keys=True, separators=(",", ":")) == canonical
    text = json.dumps(value)
    for form in (text, f" \n\t{text}\r\n ", text.encode()):
        assert json.dumps(fastjson.loads(form)) == text


@pytest.mark.parametrize("text", ["", "  ", "{", "{} x", "[1,]", "\ufeff{}", '{"a":1,}', "nul", "1 2", '"\x01"'])
def test_errors_match_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        fastjson.loads(text)
    assert str(got.value) == str(expected.value)


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        fastjson.dumps({"a": object()})


@pytest.mark.parametrize("cid", ["a", "a-b.c+d_e", "é1", "٣", "a/b", "a b", "", ".", "..", "x:y", "a\n", "\na"])
def test_container_id_alphabet_is_runcs(cid: str) -> None:
    # runc's ^[\w+-.]+$ (Go: $ is the end of the text), not "." or "..".
    valid = bool(re.fullmatch(r"[\w+\-.]+", cid)) and cid not in (".", "..")
    if valid:
        check_container_id(cid)
    else:
        with pytest.raises(InvalidSpec):
            check_container_id(cid)


@pytest.mark.parametrize("spec", ["memory:/a", "memory,cpu:/x;pids:/y", ":/", "a:b:/", "A:/x", "mem:x", "", "a:/b:c"])
def test_resolved_cgroup_form(spec: str) -> None:
    expected = bool(spec) and all(re.match(r"^[a-z0-9_,]*:/", e) for e in spec.split(";"))
    assert is_resolved_form(spec) == expected


def _loaded_by_the_run_path(names: set[str], extra: str = "") -> list[str]:
    """Which of ``names`` the modules of `berth-runtime run` (cli.py, then the run verb's) import, fresh."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "import engine.runtime.cli, engine.runtime.fastargs, engine.runtime.commands.create\n"
        "import engine.runtime.create, engine.runtime.lifecycle, engine.runtime.foreground\n"
        f"import engine.runtime.cgroups{extra}\n"
        f"print(','.join(sorted({sorted(names)!r} & sys.modules.keys())))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    return [name for name in out.stdout.strip().split(",") if name]


def test_the_run_path_imports_no_typing_enum_re_json_socket_or_signal() -> None:
    names = {"typing", "enum", "re", "json", "socket", "signal"}
    assert _loaded_by_the_run_path(names, extra=", engine.runtime.seccomp_bpf") == []


def test_the_plain_run_path_imports_no_contextlib_collections_importlib_or_terminal_code() -> None:
    # Without seccomp or a terminal (seccomp_bpf and the console bring their own), on any cgroup layout
    # (devices_bpf is pure v2's): ~3 ms of every call.
    names = {"contextlib", "collections", "functools", "importlib", "termios", "tty", "engine.runtime.console",
             "engine.runtime.cgroups.devices_bpf"}
    assert _loaded_by_the_run_path(names) == []

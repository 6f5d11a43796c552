"""`spec` and `features` produce documents valid against the runtime-spec schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime.capabilities import DEFAULT_CAPABILITIES

from .oci_schemas import validate


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.runtime.cli", *args], capture_output=True, text=True,
                          cwd=cwd)


@pytest.mark.parametrize("rootless", [False, True])
def test_spec_writes_a_valid_config_with_dockers_capabilities(tmp_path: Path, rootless: bool) -> None:
    result = cli("spec", "--bundle", str(tmp_path), *(["--rootless"] if rootless else []))
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "config.json").read_text())
    validate(config, "config-schema.json")
    assert config["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert "/proc/kcore" in config["linux"]["maskedPaths"] and "/proc/sys" in config["linux"]["readonlyPaths"]
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert ("user" in types) is rootless and ("network" in types) is not rootless


def test_spec_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = cli("spec", "--bundle", str(tmp_path))
    assert result.returncode == 1 and "config.json exists" in result.stderr
    assert (tmp_path / "config.json").read_text() == "{}"


def test_features_is_valid(tmp_path: Path) -> None:
    result = cli("features")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    validate(document, "features-schema.json")
    assert "user" in document["linux"]["namespaces"] and "createRuntime" in document["hooks"]


def test_unknown_container_is_a_runc_style_error(tmp_path: Path) -> None:
    result = cli("--root", str(tmp_path), "state", "nope")
    assert result.returncode == 1
    assert 'level=error msg="container does not exist: nope"' in result.stderr

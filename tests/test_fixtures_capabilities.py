"""Marker probes say what is missing and how to get it; conftest turns them into skips."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.fixtures import capabilities
from tests.fixtures.cleanup import TAG_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]


def _project_markers() -> set[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return {line.split(":", 1)[0].strip() for line in pyproject["tool"]["pytest"]["ini_options"]["markers"]}


def test_every_declared_marker_is_probed_except_slow():
    declared = _project_markers()
    assert set(capabilities.MARKER_PROBES) <= declared
    assert declared - set(capabilities.MARKER_PROBES) == {"slow"}


def test_root_probe_names_the_uid():
    assert capabilities.root(euid=0).available
    missing = capabilities.root(euid=1000)
    assert not missing.available
    assert "uid 1000" in missing.missing and "as root" in missing.missing


def test_missing_binaries_are_named_with_how_to_install_them(tmp_path):
    absent = tmp_path / "absent"
    dockerd = capabilities.dockerd(binary=absent, euid=0)
    registry = capabilities.registry(binary=absent)
    assert not dockerd.available and not registry.available
    assert str(absent) in dockerd.missing and "apt-get install docker.io" in dockerd.missing
    assert str(absent) in registry.missing and "apt-get install docker-registry" in registry.missing


def test_dockerd_also_needs_root(tmp_path):
    binary = tmp_path / "dockerd"
    binary.write_text("")
    assert capabilities.dockerd(binary=binary, euid=0).available
    assert "root" in capabilities.dockerd(binary=binary, euid=1000).missing


def test_kvm_needs_virtualisation_flags_not_just_the_device(tmp_path):
    paravirtual = tmp_path / "cpuinfo-pvm"
    paravirtual.write_text("processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n")
    hardware = tmp_path / "cpuinfo-vmx"
    hardware.write_text("processor\t: 0\nflags\t\t: fpu sse2 vmx\n")
    device = Path("/dev/null")  # exists and is read/write for everyone, like a usable /dev/kvm
    without_flags = capabilities.kvm(device=device, cpuinfo=paravirtual)
    assert not without_flags.available and "vmx/svm" in without_flags.missing
    assert capabilities.kvm(device=device, cpuinfo=hardware).available
    no_device = capabilities.kvm(device=tmp_path / "kvm", cpuinfo=hardware)
    assert not no_device.available and "does not exist" in no_device.missing


def test_kvm_probe_agrees_with_this_host():
    flags = capabilities._cpu_flags(Path("/proc/cpuinfo").read_text())
    expected = capabilities.KVM_DEVICE.exists() and bool(flags & {"vmx", "svm"})
    assert capabilities.kvm().available == (expected and os.access(capabilities.KVM_DEVICE, os.W_OK))


def test_display_probe_accepts_a_display_or_xvfb(tmp_path):
    assert capabilities.display({"DISPLAY": ":0", "PATH": str(tmp_path)}).available
    missing = capabilities.display({"PATH": str(tmp_path)})
    assert not missing.available and "apt-get install xvfb" in missing.missing
    xvfb = tmp_path / "Xvfb"
    xvfb.write_text("#!/bin/sh\n")
    xvfb.chmod(0o755)
    assert capabilities.display({"PATH": str(tmp_path)}).available


MARKED_TESTS = """
import pytest

@pytest.mark.needs_root
def test_root():
    pass

@pytest.mark.needs_kvm
def test_kvm():
    pass

@pytest.mark.needs_display
def test_display():
    pass

@pytest.mark.needs_registry
def test_registry_marker():
    pass

def test_registry_fixture_implies_the_marker(request, registry):
    assert request.node.get_closest_marker("needs_registry") is not None
"""


def test_marked_tests_run_or_skip_with_the_probe_reason(tmp_path):
    test_file = tmp_path / "test_marked.py"
    test_file.write_text(MARKED_TESTS)
    env = {k: v for k, v in os.environ.items() if k != TAG_ENV}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", "-p", "tests.conftest",
            "-c", str(REPO_ROOT / "pyproject.toml"), "--rootdir", str(REPO_ROOT), str(test_file),
        ],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    expectations = {
        "test_root": ("needs_root", capabilities.root()),
        "test_kvm": ("needs_kvm", capabilities.kvm()),
        "test_display": ("needs_display", capabilities.display()),
        "test_registry_marker": ("needs_registry", capabilities.registry()),
        "test_registry_fixture_implies_the_marker": ("needs_registry", capabilities.registry()),
    }
    for name, (marker, capability) in expectations.items():
        outcome = re.search(rf"::{name} (PASSED|SKIPPED)", result.stdout)
        assert outcome, result.stdout
        if capability.available:
            assert outcome.group(1) == "PASSED", result.stdout
        else:
            assert outcome.group(1) == "SKIPPED", result.stdout
            assert f"[{marker}] {capability.missing}" in result.stdout

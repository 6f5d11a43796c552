"""Cross-check with runc: the same capabilities and seccomp config give the same process.

runc runs a container whose root holds the host's /usr read-only; Berth's
functions run in a forked child that execs the same binary.  The two outputs
(the Cap* lines of /proc/self/status, or what a shell script prints) must match.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.runtime.capabilities import DEFAULT_CAPABILITIES, apply_capabilities
from engine.runtime.seccomp import compile_seccomp, default_seccomp, set_no_new_privs
from engine.runtime.seccomp_bpf import load_seccomp
from tests.fixtures.cleanup import current_tag, resource_name

RUNC = shutil.which("runc")
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or RUNC is None, reason="needs root and runc")

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Probes whose answers come from seccomp: unshare(CLONE_NEWUSER) and personality(ADDR_NO_RANDOMIZE).
PROBE_SCRIPT = 'unshare -U true; echo "unshare=$?"; setarch x86_64 -R true; echo "personality=$?"; echo ok'
_ids = itertools.count()


@pytest.fixture
def bundle(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "bundle" / "rootfs"
    for d in ("usr", "proc", "dev", "sys", "tmp"):
        (root / d).mkdir(parents=True)
    for link in ("bin", "lib", "lib64", "sbin"):  # this host has merged /usr
        (root / link).symlink_to(f"usr/{link}")
    assert RUNC is not None
    subprocess.run([RUNC, "spec", "--bundle", str(tmp_path / "bundle")], check=True)
    yield tmp_path / "bundle"


def run_runc(bundle: Path, args: list[str], edit: dict[str, Any] | None = None) -> str:
    """`runc run` the bundle with these args (after applying ``edit`` to config.json); return stdout."""
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"].update({"terminal": False, "args": args})
    config["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]})
    for key, value in (edit or {}).items():
        section, _, field = key.partition(".")
        config[section][field] = value
    config_path.write_text(json.dumps(config))
    state = bundle.parent / "runc-state"
    # runc names the container's cgroup after its id: the run tag lets the cleanup guard sweep it.
    container_id = resource_name(current_tag(), f"xcheck{next(_ids)}")
    assert RUNC is not None
    try:
        out = subprocess.run(
            [RUNC, "--root", str(state), "run", "-b", str(bundle), container_id],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        subprocess.run([RUNC, "--root", str(state), "delete", "-f", container_id], capture_output=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def run_berth(caps: dict[str, list[str]], args: list[str], seccomp: dict[str, Any] | None = None) -> str:
    """Apply caps (and seccomp, loaded last under no_new_privs as runc does) in a child, exec args."""
    bpf = compile_seccomp(seccomp) if seccomp is not None else None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.dup2(w, 2)
            apply_capabilities(caps)
            set_no_new_privs()
            if bpf is not None:
                load_seccomp(bpf)
            os.execve(args[0], args, {"PATH": PATH})
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r) as inp:
        out = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out


def cap_lines(status_text: str) -> list[str]:
    return [line for line in status_text.splitlines() if line.startswith(("Cap", "NoNewPrivs"))]


def test_runc_spec_default_capabilities_match(bundle: Path) -> None:
    caps = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]
    assert "inheritable" not in caps and caps["ambient"]  # runc spec: ambient without inheritable
    runc = cap_lines(run_runc(bundle, ["/usr/bin/cat", "/proc/self/status"]))
    berth = cap_lines(run_berth(caps, ["/usr/bin/cat", "/proc/self/status"]))
    assert berth == runc
    assert "CapEff:\t0000000020000420" in runc  # AUDIT_WRITE, KILL, NET_BIND_SERVICE


def test_docker_default_capabilities_match(bundle: Path) -> None:
    names = list(DEFAULT_CAPABILITIES)
    caps = {"bounding": names, "effective": names, "permitted": names}
    runc = cap_lines(run_runc(bundle, ["/usr/bin/cat", "/proc/self/status"], {"process.capabilities": caps}))
    berth = cap_lines(run_berth(caps, ["/usr/bin/cat", "/proc/self/status"]))
    assert berth == runc
    assert "CapEff:\t00000000a80425fb" in runc


def test_default_seccomp_profile_gives_the_same_answers_as_under_runc(bundle: Path) -> None:
    names = list(DEFAULT_CAPABILITIES)
    caps = {"bounding": names, "effective": names, "permitted": names}
    profile = default_seccomp(names)
    args = ["/bin/sh", "-c", "exec 2>&1; " + PROBE_SCRIPT]
    runc = run_runc(bundle, args, {"process.capabilities": caps, "linux.seccomp": profile})
    berth = run_berth(caps, args, profile)
    unfiltered = run_berth(caps, args)
    assert berth == runc
    assert "unshare=1" in runc and "personality=1" in runc and runc.endswith("ok\n")
    assert "Operation not permitted" in runc
    assert "personality=0" in unfiltered  # without the filter the probe behaves differently

"""Cross-check with Docker: the OCI seccomp dockerd writes for a profile is what Berth converts.

dockerd (Debian's 20.10) gets the shipped default profile through
``--security-opt seccomp=<file>`` and writes the container's OCI config.json
in its exec root; ``docker_profile_to_oci`` must produce the same rules for the
same capability set, architecture and kernel.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.runtime.seccomp import default_profile, docker_profile_to_oci
from tests.fixtures.dockerd import ReferenceDockerd, reference_dockerd  # noqa: F401  (fixture)

pytestmark = pytest.mark.needs_dockerd

IMAGE = "berth-seccomp-xcheck:1"


@pytest.fixture
def busybox_image(reference_dockerd: ReferenceDockerd, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    archive = tmp_path / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add("/usr/bin/busybox", arcname="bin/busybox")  # statically linked
    reference_dockerd.docker("import", str(archive), IMAGE)
    try:
        yield IMAGE
    finally:
        reference_dockerd.docker("rmi", "-f", IMAGE, check=False)


def _normalized(seccomp: dict[str, Any]) -> dict[str, Any]:
    """Order-independent form; absent and default fields compare equal, as they mean the same.

    dockerd 20.10 predates defaultErrnoRet and drops it; for SCMP_ACT_ERRNO an
    absent errno means EPERM (runtime-spec), which is the profile's value (1).
    """

    def errno_ret(action: str, value: int | None) -> int | None:
        return 1 if value is None and action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else value

    def rule(r: dict[str, Any]) -> str:
        args = [
            {"index": a["index"], "value": a.get("value", 0), "valueTwo": a.get("valueTwo", 0), "op": a["op"]}
            for a in r.get("args") or []
        ]
        return json.dumps(
            {
                "names": sorted(r["names"]),
                "action": r["action"],
                "errnoRet": errno_ret(r["action"], r.get("errnoRet")),
                "args": args,
            },
            sort_keys=True,
        )

    return {
        "defaultAction": seccomp["defaultAction"],
        "defaultErrnoRet": errno_ret(seccomp["defaultAction"], seccomp.get("defaultErrnoRet")),
        "architectures": sorted(seccomp.get("architectures") or []),
        "syscalls": sorted(rule(r) for r in seccomp.get("syscalls") or []),
    }


@pytest.mark.parametrize("cap_add", [[], ["SYS_ADMIN", "SYS_PTRACE"]])
def test_dockerd_writes_the_same_seccomp_rules(
    reference_dockerd: ReferenceDockerd,  # noqa: F811
    busybox_image: str,
    tmp_path: Path,
    cap_add: list[str],
) -> None:
    profile_path = tmp_path / "profile.json"
    profile_path.write_text(json.dumps(default_profile()))
    flags = [f"--cap-add={c}" for c in cap_add]
    run = reference_dockerd.docker(
        "run", "-d", "--network", "none", f"--security-opt=seccomp={profile_path}", *flags,
        busybox_image, "/bin/busybox", "sleep", "300",
    )  # fmt: skip
    container_id = run.stdout.decode().strip()
    try:
        (config_path,) = [p for p in reference_dockerd.exec_root.rglob("config.json") if container_id in str(p)]
        config = json.loads(config_path.read_text())
    finally:
        reference_dockerd.docker("rm", "-f", container_id, check=False)
    bounding = config["process"]["capabilities"]["bounding"]
    ours = docker_profile_to_oci(default_profile(), bounding, arch="x86_64")
    assert _normalized(ours) == _normalized(config["linux"]["seccomp"])
    assert ("CAP_SYS_ADMIN" in bounding) == bool(cap_add)

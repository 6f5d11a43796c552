"""Docker create requests → OCI specs: Docker's defaults and override rules, schema-valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.containers.errors import InvalidConfig
from engine.containers.oci_spec import SpecInputs, build_spec, command_line, environment
from engine.containers.users import resolve_user
from tests.runtime.oci_schemas import validate


def validate_config(spec: dict) -> None:
    validate(spec, "config-schema.json")


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nwww:x:33:\nstaff:x:50:www\n")
    return tmp_path


def inputs(rootfs: Path, config: dict[str, Any] | None = None, host: dict[str, Any] | None = None,
           image: dict[str, Any] | None = None) -> SpecInputs:
    return SpecInputs(
        container_id="0123456789abcdef" * 4,
        config=config or {},
        host_config=host or {},
        image_config=image if image is not None else {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        rootfs=str(rootfs),
        cgroups_path="berth/0123",
        etc_files={"/etc/hosts": str(rootfs / "hosts")},
    )


def test_default_spec_is_schema_valid_with_dockers_defaults(rootfs: Path) -> None:
    built = build_spec(inputs(rootfs))
    validate_config(built.spec)
    spec = built.spec
    assert spec["process"]["args"] == ["sh"]
    assert spec["hostname"] == "0123456789ab"
    assert "CAP_NET_RAW" in spec["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" not in spec["process"]["capabilities"]["bounding"]
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert spec["process"]["noNewPrivileges"] is False
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert "size=67108864" in shm["options"]


@pytest.mark.parametrize(
    ("config", "image", "expected"),
    [
        ({}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["/ep", "a"]),
        ({"Cmd": ["b"]}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["/ep", "b"]),
        ({"Entrypoint": ["/new"]}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["/new"]),
        ({"Entrypoint": ["/new"], "Cmd": ["c"]}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["/new", "c"]),
        ({"Entrypoint": [], "Cmd": ["ls"]}, {"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["ls"]),
    ],
)
def test_entrypoint_and_cmd_merge_like_docker(config: dict, image: dict, expected: list[str]) -> None:
    assert command_line(config, image) == expected


def test_no_command_is_a_400(rootfs: Path) -> None:
    with pytest.raises(InvalidConfig, match="no command specified"):
        build_spec(inputs(rootfs, image={}))


def test_environment_merges_and_sets_hostname_and_term() -> None:
    env = environment({"Env": ["A=2", "B=x=y", "NOVALUE"]}, {"Env": ["A=1", "PATH=/img"]}, "host1", tty=True)
    assert env == ["PATH=/img", "HOSTNAME=host1", "TERM=xterm", "A=2", "B=x=y"]


def test_capabilities_add_drop_and_all(rootfs: Path) -> None:
    caps = build_spec(inputs(rootfs, host={"CapAdd": ["SYS_ADMIN"], "CapDrop": ["net_raw"]})).spec
    bounding = caps["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" in bounding and "CAP_NET_RAW" not in bounding
    only = build_spec(inputs(rootfs, host={"CapDrop": ["ALL"], "CapAdd": ["CHOWN"]})).spec
    assert only["process"]["capabilities"]["bounding"] == ["CAP_CHOWN"]
    with pytest.raises(InvalidConfig, match="unknown capability"):
        build_spec(inputs(rootfs, host={"CapAdd": ["FLY"]}))


def test_privileged_drops_confinement(rootfs: Path) -> None:
    spec = build_spec(inputs(rootfs, host={"Privileged": True})).spec
    assert "seccomp" not in spec["linux"] and "maskedPaths" not in spec["linux"]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "CAP_SYS_ADMIN" in spec["process"]["capabilities"]["bounding"]


def test_resources(rootfs: Path) -> None:
    spec = build_spec(inputs(rootfs, host={"Memory": 64 << 20, "NanoCpus": 1_500_000_000, "PidsLimit": 50,
                                           "CpuShares": 512})).spec
    res = spec["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"period": 100000, "quota": 150000, "shares": 512}
    assert res["pids"] == {"limit": 50}
    with pytest.raises(InvalidConfig, match="Minimum memory limit allowed is 6MB"):
        build_spec(inputs(rootfs, host={"Memory": 1024}))
    with pytest.raises(InvalidConfig, match="Nano CPUs and CPU Quota"):
        build_spec(inputs(rootfs, host={"NanoCpus": 1, "CpuQuota": 5}))


def test_users_resolve_inside_the_image(rootfs: Path) -> None:
    assert resolve_user(str(rootfs), "www").uid == 33
    assert resolve_user(str(rootfs), "www").additional_gids == [50]
    assert (resolve_user(str(rootfs), "1234").uid, resolve_user(str(rootfs), "1234").gid) == (1234, 0)
    assert resolve_user(str(rootfs), "www:staff").gid == 50
    spec = build_spec(inputs(rootfs, config={"User": "www"})).spec
    assert spec["process"]["user"] == {"uid": 33, "gid": 33, "additionalGids": [50]}
    with pytest.raises(InvalidConfig, match="unable to find user nobody"):
        build_spec(inputs(rootfs, config={"User": "nobody"}))


def test_user_lookup_does_not_follow_symlinks_out_of_the_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").symlink_to("/etc")  # resolves to <root>/etc → missing, never the host's /etc
    assert resolve_user(str(root), "").uid == 0
    with pytest.raises(Exception, match="unable to find user"):
        resolve_user(str(root), "root")
    # Absolute and climbing links resolve inside the rootfs (the kernel does it: openat2 RESOLVE_IN_ROOT).
    (root / "etc").unlink()
    (root / "real").mkdir()
    (root / "real" / "passwd").write_text("www:x:33:34::/srv:/bin/sh\n")
    (root / "etc").symlink_to("../../../../real")
    assert (resolve_user(str(root), "www").uid, resolve_user(str(root), "www").home) == (33, "/srv")


def test_security_opts(rootfs: Path) -> None:
    spec = build_spec(inputs(rootfs, host={"SecurityOpt": ["seccomp=unconfined", "no-new-privileges"]})).spec
    assert "seccomp" not in spec["linux"]
    assert spec["process"]["noNewPrivileges"] is True
    with pytest.raises(InvalidConfig):
        build_spec(inputs(rootfs, host={"SecurityOpt": ["seccomp={not json"]}))

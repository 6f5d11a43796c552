"""Docker's mount syntaxes: `-v`, HostConfig.Mounts / `--mount`, `--volumes-from`, and their errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.volumes import InvalidParameter
from engine.volumes.mount_spec import (
    MountSpec,
    parse_bind,
    parse_mount,
    parse_mount_flag,
    parse_volumes_from,
    ram_in_bytes,
    resolve_mounts,
    resolve_volumes_from,
    tmpfs_options,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("data:/data", MountSpec(type="volume", source="data", target="/data")),
    ("data:/data:ro", MountSpec(type="volume", source="data", target="/data", read_only=True, mode="ro")),
    ("data:/data:rw,nocopy", MountSpec(type="volume", source="data", target="/data", mode="rw,nocopy",
                                       copy_data=False)),
    ("data:/data:z", MountSpec(type="volume", source="data", target="/data", mode="z")),
    ("data:/data:Z,ro", MountSpec(type="volume", source="data", target="/data", mode="Z,ro", read_only=True)),
    ("/ctr", MountSpec(type="volume", target="/ctr")),
    ("/ctr/sub/", MountSpec(type="volume", target="/ctr/sub")),
    ("/host:/ctr", MountSpec(type="bind", source="/host", target="/ctr", propagation="rprivate",
                             create_source=True)),
    ("/host/:/ctr:ro,rshared", MountSpec(type="bind", source="/host", target="/ctr", read_only=True,
                                         mode="ro,rshared", propagation="rshared", create_source=True)),
    ("/host:/ctr:ro-non-recursive", MountSpec(type="bind", source="/host", target="/ctr", read_only=True,
                                              mode="ro-non-recursive", propagation="rprivate",
                                              create_source=True)),
    ("/host:/ctr:cached", MountSpec(type="bind", source="/host", target="/ctr", mode="cached",
                                    propagation="rprivate", create_source=True)),
])
def test_dash_v(raw: str, expected: MountSpec) -> None:
    assert parse_bind(raw) == expected


def test_dash_v_with_a_volume_driver() -> None:
    spec = parse_bind("data:/data", volume_driver="local")
    assert spec.driver == "local" and spec.anonymous is False
    assert parse_bind("/h:/c", volume_driver="local").driver == ""  # drivers are for volumes only


@pytest.mark.parametrize(("raw", "message"), [
    ("", "invalid volume specification: ''"),
    (":/data", "invalid volume specification: ':/data'"),
    ("/ctr:rw", "invalid volume specification: '/ctr:rw'"),
    ("/ctr:ro", "invalid volume specification: '/ctr:ro'"),
    ("a:/b:ro:extra", "invalid volume specification: 'a:/b:ro:extra'"),
    ("data:/data:bogus", "invalid mode: bogus"),
    ("data:/data:ro,rw", "invalid mode: ro,rw"),
    ("data:/data:shared,private", "invalid mode: shared,private"),
    ("data:relative", "invalid volume specification: 'data:relative': invalid mount config for type \"volume\": "
                      "invalid mount path: 'relative' mount path must be absolute"),
    ("data:/", "invalid volume specification: 'data:/': invalid mount config for type \"volume\": "
               "invalid specification: destination can't be '/'"),
    ("/host:/", "invalid volume specification: '/host:/': invalid mount config for type \"bind\": "
                "invalid specification: destination can't be '/'"),
    ("/host:/ctr:nocopy", "invalid volume specification: '/host:/ctr:nocopy': invalid mount config for type "
                          "\"bind\": field VolumeOptions must not be specified"),
    ("data:/ctr:rshared", "invalid volume specification: 'data:/ctr:rshared': invalid mount config for type "
                          "\"volume\": field BindOptions must not be specified"),
])
def test_dash_v_errors(raw: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_bind(raw)
    assert str(info.value) == message


def test_bind_source_need_not_exist_for_dash_v(tmp_path: Path) -> None:
    assert parse_bind(f"{tmp_path}/missing:/x").create_source is True


@pytest.mark.parametrize(("mount", "expected"), [
    ({"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": True,
      "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}, "Subpath": "sub/dir",
                        "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}},
     MountSpec(type="volume", source="data", target="/data", read_only=True, copy_data=False, driver="local",
               driver_options={"type": "tmpfs", "device": "tmpfs"}, labels={"a": "b"}, subpath="sub/dir")),
    ({"Type": "volume", "Target": "/anon"}, MountSpec(type="volume", target="/anon")),
    ({"Type": "bind", "Source": "/", "Target": "/host", "BindOptions": {"Propagation": "rslave",
                                                                          "NonRecursive": True}},
     MountSpec(type="bind", source="/", target="/host", propagation="rslave", non_recursive=True)),
    ({"Type": "bind", "Source": "/nonexistent-berth", "Target": "/x", "BindOptions": {"CreateMountpoint": True}},
     MountSpec(type="bind", source="/nonexistent-berth", target="/x", propagation="rprivate", create_source=True)),
    ({"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1777,
                                                            "Options": [["noexec"]]}},
     MountSpec(type="tmpfs", target="/run", tmpfs_options="mode=1777,size=64m,noexec")),
    ({"Type": "tmpfs", "Target": "/ro", "ReadOnly": True},
     MountSpec(type="tmpfs", target="/ro", read_only=True, tmpfs_options="ro")),
])
def test_host_config_mounts(mount: dict[str, Any], expected: MountSpec) -> None:
    assert parse_mount(mount) == expected


@pytest.mark.parametrize(("mount", "message"), [
    ({"Type": "bind", "Source": "/x-berth-missing", "Target": "/x"},
     'invalid mount config for type "bind": bind source path does not exist: /x-berth-missing'),
    ({"Type": "bind", "Target": "/x"}, 'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "bind", "Source": "rel", "Target": "/x"},
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "bind", "Source": "/", "Target": "/x", "BindOptions": {"Propagation": "sideways"}},
     'invalid mount config for type "bind": invalid propagation mode: sideways'),
    ({"Type": "bind", "Source": "/", "Target": "/x", "VolumeOptions": {}},
     'invalid mount config for type "bind": field VolumeOptions must not be specified'),
    ({"Type": "volume", "Source": "v"}, 'invalid mount config for type "volume": field Target must not be empty'),
    ({"Type": "volume", "Source": "v", "Target": "/"},
     "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
    ({"Type": "volume", "Source": "v", "Target": "x"},
     "invalid mount config for type \"volume\": invalid mount path: 'x' mount path must be absolute"),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True},
     'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes'),
    ({"Type": "volume", "Target": "/x", "VolumeOptions": {"Subpath": "a"}},
     'invalid mount config for type "volume": must not set Subpath when using anonymous volumes'),
    ({"Type": "volume", "Source": "v", "Target": "/x", "VolumeOptions": {"Subpath": "../up"}},
     'invalid mount config for type "volume": subpath must be a relative path within the volume'),
    ({"Type": "volume", "Source": "v", "Target": "/x", "BindOptions": {}},
     'invalid mount config for type "volume": field BindOptions must not be specified'),
    ({"Type": "tmpfs", "Source": "x", "Target": "/x"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "tmpfs", "Target": "/x", "BindOptions": {}},
     'invalid mount config for type "tmpfs": field BindOptions must not be specified'),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["suid"]]}},
     'invalid mount config for type "tmpfs": invalid option: suid'),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["a", "b", "c"]]}},
     'invalid mount config for type "tmpfs": invalid option array length'),
    ({"Type": "floppy", "Target": "/x"}, 'invalid mount config for type "floppy": mount type unknown'),
    ({"Target": "/x"}, 'invalid mount config for type "": mount type unknown'),
    ({"Type": "image", "Source": "alpine", "Target": "/x"},
     'invalid mount config for type "image": mount type not supported by Berth'),
])
def test_host_config_mounts_errors(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_mount(mount)
    assert str(info.value) == message


@pytest.mark.parametrize(("flag", "expected"), [
    ("type=volume,src=data,dst=/data,readonly",
     {"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": True}),
    ("source=data,target=/data", {"Type": "volume", "Source": "data", "Target": "/data"}),
    ("type=volume,src=data,destination=/data,volume-nocopy,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
     "\"volume-opt=o=size=1m,uid=1000\",volume-label=team=web,volume-driver=local,volume-subpath=sub",
     {"Type": "volume", "Source": "data", "Target": "/data",
      "VolumeOptions": {"NoCopy": True, "Labels": {"team": "web"}, "Subpath": "sub",
                        "DriverConfig": {"Name": "local",
                                         "Options": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}}}}),
    ("type=bind,src=/h,dst=/c,ro=true,bind-propagation=rslave,bind-nonrecursive",
     {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True,
      "BindOptions": {"Propagation": "rslave", "NonRecursive": True}}),
    ("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770",
     {"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}}),
])
def test_mount_flag(flag: str, expected: dict[str, Any]) -> None:
    assert parse_mount_flag(flag) == expected


@pytest.mark.parametrize(("flag", "message"), [
    ("type=volume,src=data", "target is required"),
    ("type=volume,dst=/d,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=volume,dst=/d,colour=red", "unexpected key 'colour' in 'colour=red'"),
    ("type=volume,dst=/d,readonly=maybe", "invalid value for readonly: maybe"),
    ("type=tmpfs,dst=/d,tmpfs-size=huge", "invalid value for tmpfs-size: huge"),
    ("type=tmpfs,dst=/d,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"),
    ("type=volume,dst=/d,volume-opt=novalue", "invalid value for volume-opt: novalue"),
    ("type=bind,src=/h,dst=/d,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
    ("type=volume,dst=/d,bind-propagation=shared", "cannot mix 'bind-*' options with mount type 'volume'"),
    ("type=bind,src=/h,dst=/d,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'bind'"),
])
def test_mount_flag_errors(flag: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_mount_flag(flag)
    assert str(info.value) == message


def test_tmpfs_size_suffixes() -> None:
    assert tmpfs_options({"SizeBytes": 1 << 30}) == "size=1g"
    assert tmpfs_options({"SizeBytes": 3 << 10}) == "size=3k"
    assert tmpfs_options({"SizeBytes": 1000}) == "size=1000"
    assert ram_in_bytes("512k") == 512 << 10 and ram_in_bytes("2GB") == 2 << 30 and ram_in_bytes("10") == 10


@pytest.mark.parametrize(("spec", "expected"), [
    ("web", ("web", "rw")), ("web:ro", ("web", "ro")), ("web:rw", ("web", "rw")), ("web:ro,z", ("web", "ro,z")),
])
def test_volumes_from_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_volumes_from(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("", "volumes-from specification cannot be an empty string"),
    ("web:bogus", "invalid mode: bogus"),
    ("web:rshared", "invalid mode: rshared"),
    ("web:nocopy", "invalid mode: nocopy"),
])
def test_volumes_from_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_volumes_from(spec)
    assert str(info.value) == message


SOURCE_MOUNTS = [
    MountSpec(type="volume", source="data", target="/data"),
    MountSpec(type="bind", source="/h", target="/conf", read_only=True, propagation="rprivate"),
]


def _lookup(ref: str) -> list[MountSpec]:
    if ref != "web":
        raise LookupError(f"No such container: {ref}")
    return SOURCE_MOUNTS


def test_volumes_from_resolution_keeps_or_forces_read_only() -> None:
    assert resolve_volumes_from("web", _lookup) == SOURCE_MOUNTS
    ro = resolve_volumes_from("web:ro", _lookup)
    assert [(m.target, m.read_only) for m in ro] == [("/data", True), ("/conf", True)]
    with pytest.raises(LookupError, match="No such container: db"):
        resolve_volumes_from("db", _lookup)


def test_resolve_mounts_precedence() -> None:
    specs = resolve_mounts(
        binds=["own:/data", "/h2:/extra"],
        mounts=[{"Type": "tmpfs", "Target": "/scratch"}],
        volumes_from=["web:ro"],
        lookup=_lookup,
        tmpfs={"/run": "size=1m"},
        image_volumes=["/data", "/cache/"],
    )
    by_target = {s.target: s for s in specs}
    assert [s.target for s in specs] == ["/cache", "/conf", "/data", "/extra", "/run", "/scratch"]
    assert by_target["/data"].source == "own" and not by_target["/data"].read_only  # -v beats volumes-from
    assert by_target["/conf"].read_only  # from web, read-only
    assert by_target["/cache"].anonymous  # image VOLUME where nothing else is mounted
    assert by_target["/run"].tmpfs_options == "size=1m"


@pytest.mark.parametrize(("kwargs", "target"), [
    ({"binds": ["a:/data", "b:/data"]}, "/data"),
    ({"binds": ["a:/data"], "mounts": [{"Type": "volume", "Source": "b", "Target": "/data/"}]}, "/data"),
    ({"mounts": [{"Type": "tmpfs", "Target": "/t"}, {"Type": "volume", "Target": "/t"}]}, "/t"),
    ({"binds": ["a:/run"], "tmpfs": {"/run": ""}}, "/run"),
])
def test_duplicate_mount_point(kwargs: dict[str, Any], target: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        resolve_mounts(**kwargs)
    assert str(info.value) == f"Duplicate mount point: {target}"


def test_mount_point_json() -> None:
    spec = parse_bind("data:/data:ro")
    assert spec.mount_point("/var/lib/berth/volumes/data/_data") == {
        "Type": "volume", "Name": "data", "Source": "/var/lib/berth/volumes/data/_data", "Destination": "/data",
        "Driver": "local", "Mode": "ro", "RW": False, "Propagation": "",
    }
    bind = parse_bind("/h:/c")
    assert bind.mount_point()["Source"] == "/h" and bind.mount_point()["Propagation"] == "rprivate"


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        ("/h:/c", ["rbind", "rw", "rprivate"]),
        ("/h:/c:ro", ["rbind", "ro", "rprivate"]),
        ("/h:/c:rw,rshared", ["rbind", "rw", "rshared"]),
        ("/h:/c:slave", ["rbind", "rw", "slave"]),
    ],
)
def test_oci_bind_mounts(raw: str, options: list[str]) -> None:
    # What the container's OCI spec gets for `-v` binds (moby oci_linux.go setMounts).
    assert parse_bind(raw).oci_mount() == {"destination": "/c", "type": "bind", "source": "/h", "options": options}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("", ["noexec", "nosuid", "nodev"]),
        ("size=64m", ["noexec", "nosuid", "nodev", "size=64m"]),
        ("exec,size=1m", ["nosuid", "nodev", "size=1m"]),
        ("mode=1777,suid", ["noexec", "nodev", "mode=1777"]),
    ],
)
def test_oci_tmpfs_mounts(options: str, expected: list[str]) -> None:
    [spec] = resolve_mounts(tmpfs={"/run": options})
    assert spec.oci_mount() == {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": expected}


def test_oci_volume_and_tmpfs_mounts() -> None:
    volume = parse_bind("data:/data:ro")
    assert volume.oci_mount("/vol/_data") == {"destination": "/data", "type": "bind", "source": "/vol/_data",
                                              "options": ["rbind", "ro", "rprivate"]}
    with pytest.raises(InvalidParameter, match="mount the volume first"):
        volume.oci_mount()
    tmpfs = parse_mount(parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700"))
    assert tmpfs.oci_mount()["options"] == ["noexec", "nosuid", "nodev", "mode=700", "size=1m"]
    flat = parse_mount({"Type": "bind", "Source": "/", "Target": "/h", "BindOptions": {"NonRecursive": True}})
    assert flat.oci_mount()["options"] == ["bind", "rw", "rprivate"]

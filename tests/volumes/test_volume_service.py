"""Named volumes: create/inspect/list/remove, in-use protection, prune, filters, sizes."""

from __future__ import annotations

import copy
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.store import MetadataDB
from engine.volumes import Conflict, InUse, InvalidParameter, NotFound, VolumeService
from engine.volumes.names import ANONYMOUS_LABEL
from tests.specs import SPECS_DIR

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the Engine API swagger file")


@cache
def _definitions() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SPECS_DIR / "docker-engine-api-v1.51.yaml").read_text())
    return doc["definitions"]  # type: ignore[no-any-return]


def _validate_volume(document: dict[str, Any]) -> None:
    schema = copy.deepcopy(_definitions()["Volume"])
    schema["additionalProperties"] = False  # a misspelled key fails too
    schema["properties"]["UsageData"]["type"] = ["object", "null"]  # x-nullable
    jsonschema.Draft4Validator({"definitions": _definitions(), **schema}).validate(document)


def test_create_inspect_list_remove_round_trip(service: VolumeService, data_root: Path) -> None:
    created = service.create("data", labels={"com.example.team": "web"})
    _validate_volume(created)
    mountpoint = data_root / "volumes" / "data" / "_data"
    assert created["Mountpoint"] == str(mountpoint) and mountpoint.is_dir()
    assert created["Driver"] == "local" and created["Scope"] == "local" and created["Options"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created["CreatedAt"])
    assert "UsageData" not in created

    inspected = service.inspect("data")
    assert inspected == created
    listed = service.list_volumes()
    assert listed["Warnings"] == [] and [v["Name"] for v in listed["Volumes"]] == ["data"]
    for volume in listed["Volumes"]:
        _validate_volume(volume)

    service.remove("data")
    assert not (data_root / "volumes" / "data").exists()
    with pytest.raises(NotFound, match=r"^get data: no such volume$"):
        service.inspect("data")
    with pytest.raises(NotFound):
        service.remove("data")
    service.remove("data", force=True)  # force forgives a missing volume


def test_create_is_idempotent_for_an_existing_name(service: VolumeService) -> None:
    first = service.create("data", labels={"a": "1"})
    second = service.create("data", labels={"b": "2"})
    assert second == first


def test_anonymous_volumes_get_a_64_hex_name_and_the_anonymous_label(service: VolumeService) -> None:
    anon = service.create(anonymous=True)
    assert re.fullmatch(r"[0-9a-f]{64}", anon["Name"]) and anon["Labels"] == {ANONYMOUS_LABEL: ""}
    nameless = service.create()
    assert re.fullmatch(r"[0-9a-f]{64}", nameless["Name"]) and nameless["Labels"] == {}
    assert nameless["Name"] != anon["Name"]


@pytest.mark.parametrize(("name", "message"), [
    ("a", "volume name is too short, names should be at least two alphanumeric characters"),
    ("my vol", '"my vol" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" '
               "are allowed. If you intended to pass a host directory, use absolute path"),
    ("./rel", '"./rel" includes invalid characters'),
    ("-dash", '"-dash" includes invalid characters'),
    ("a/b", '"a/b" includes invalid characters'),
    ("..", '".." includes invalid characters'),
])
def test_invalid_names_are_refused_with_dockers_message(service: VolumeService, name: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        service.create(name)
    assert str(info.value).startswith(message)


def test_valid_names(service: VolumeService) -> None:
    for name in ("db", "my_vol-1.2", "0x"):
        assert service.create(name)["Name"] == name


@pytest.mark.parametrize(("opts", "message"), [
    ({"colour": "blue"}, 'invalid option: "colour"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"device": "tmpfs"}, 'missing required option: "type"'),
    ({"o": "size=1m", "type": "tmpfs"}, 'missing required option: "device"'),
    ({"size": "10m"}, "quota size requested but no quota support"),
    ({"type": "none", "device": "relative/dir", "o": "bind"}, "must be an absolute path"),
])
def test_invalid_driver_options(service: VolumeService, opts: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidParameter, match=re.escape(message)):
        service.create("data", driver_opts=opts)
    with pytest.raises(NotFound):
        service.inspect("data")


def test_unknown_driver_is_not_found(service: VolumeService) -> None:
    with pytest.raises(NotFound, match='plugin "nfs-magic" not found'):
        service.create("data", driver="nfs-magic")


def test_in_use_protection_survives_reopening_the_service(data_root: Path) -> None:
    db = MetadataDB.in_data_root(data_root)
    service = VolumeService(db, data_root)
    service.create("data")
    service.acquire("data", "c1" * 32)
    service.acquire("data", "c2" * 32)
    service.acquire("data", "c2" * 32)  # one reference per container
    db.close()

    db = MetadataDB.in_data_root(data_root)
    try:
        reopened = VolumeService(db, data_root)
        assert reopened.users("data") == ["c1" * 32, "c2" * 32]
        for force in (False, True):  # Docker refuses an in-use volume even with force
            with pytest.raises(InUse) as info:
                reopened.remove("data", force=force)
            assert str(info.value) == f"remove data: volume is in use - [{'c1' * 32}, {'c2' * 32}]"
            assert isinstance(info.value, Conflict)
        reopened.release("data", "c1" * 32)
        with pytest.raises(InUse, match=r"in use - \[" + "c2" * 32 + r"\]$"):
            reopened.remove("data")
        reopened.release("data", "c2" * 32)
        reopened.remove("data")
        assert reopened.list_volumes()["Volumes"] == []
    finally:
        db.close()


def test_acquire_of_a_missing_volume_is_not_found(service: VolumeService) -> None:
    with pytest.raises(NotFound):
        service.acquire("ghost", "c1")


def test_mount_for_needs_a_reference(service: VolumeService) -> None:
    service.create("data")
    with pytest.raises(Conflict, match="acquire it first"):
        service.mount_for("data")
    service.acquire("data", "c1")
    assert service.mount_for("data") == Path(service.inspect("data")["Mountpoint"])


def test_prune_keeps_used_and_by_default_named_volumes(service: VolumeService) -> None:
    service.create("named")
    used_anon = service.create(anonymous=True)["Name"]
    service.acquire(used_anon, "c1")
    unused_anon = service.create(anonymous=True)["Name"]
    (Path(service.inspect(unused_anon)["Mountpoint"]) / "blob").write_bytes(b"x" * 1000)

    report = service.prune()
    assert report == {"VolumesDeleted": [unused_anon], "SpaceReclaimed": 1000}
    assert sorted(v["Name"] for v in service.list_volumes()["Volumes"]) == sorted(["named", used_anon])

    report = service.prune({"all": ["true"]})
    assert report == {"VolumesDeleted": ["named"], "SpaceReclaimed": 0}
    assert [v["Name"] for v in service.list_volumes()["Volumes"]] == [used_anon]


def test_prune_label_filters(service: VolumeService) -> None:
    service.create("keep", labels={"tier": "db"})
    service.create("drop", labels={"tier": "cache"})
    service.create("plain")
    report = service.prune({"all": ["1"], "label": ["tier"], "label!": ["tier=db"]})
    assert report["VolumesDeleted"] == ["drop"]
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling'"):
        service.prune({"dangling": ["true"]})
    with pytest.raises(InvalidParameter, match="invalid filter 'all=maybe'"):
        service.prune({"all": ["maybe"]})


def test_list_filters(service: VolumeService) -> None:
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        service.list_volumes({"colour": ["red"]})  # refused with no volume to match against
    service.create("web-data", labels={"app": "web", "tier": "front"})
    service.create("db-data", labels={"app": "db"})
    service.create("scratch")
    service.acquire("db-data", "c1")

    def names(**filters: list[str]) -> list[str]:
        return [v["Name"] for v in service.list_volumes(filters)["Volumes"]]

    assert names(name=["data"]) == ["db-data", "web-data"]
    assert names(name=["web", "scr"]) == ["scratch", "web-data"]
    assert names(name=["^db"]) == ["db-data"]  # a regular expression, like moby's filters.Match
    assert names(name=["("]) == []
    assert names(label=["app"]) == ["db-data", "web-data"]
    assert names(label=["app=web"]) == ["web-data"]
    assert names(label=["app=web", "tier=back"]) == []
    assert names(dangling=["true"]) == ["scratch", "web-data"]
    assert names(dangling=["0"]) == ["db-data"]
    assert names(driver=["local"]) == ["db-data", "scratch", "web-data"]
    assert names(driver=["other"]) == []
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        names(colour=["red"])
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling=maybe'"):
        names(dangling=["maybe"])


def test_usage_counts_hardlinks_once(service: VolumeService) -> None:
    data = Path(service.create("data")["Mountpoint"])
    (data / "a").write_bytes(b"a" * 4096)
    os.link(data / "a", data / "a-again")
    (data / "sub").mkdir()
    os.link(data / "a", data / "sub" / "a-third")
    (data / "sub" / "b").write_bytes(b"b" * 100)
    os.symlink("a", data / "link")  # a symlink's own size: its target's length
    assert service.usage("data") == 4096 + 100 + 1

    service.acquire("data", "c1")
    doc = service.inspect("data", with_usage=True)
    _validate_volume(doc)
    assert doc["UsageData"] == {"Size": 4197, "RefCount": 1}
    listed = service.list_volumes(with_usage=True)["Volumes"]
    assert listed[0]["UsageData"] == {"Size": 4197, "RefCount": 1}


def test_usage_does_not_follow_symlinks_out_of_the_volume(service: VolumeService, work: Path) -> None:
    outside = work / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"x" * 100_000)
    data = Path(service.create("data")["Mountpoint"])
    os.symlink(str(outside), data / "escape")
    assert service.usage("data") == len(str(outside))


def test_subpath_resolves_inside_the_volume(service: VolumeService, work: Path) -> None:
    data = Path(service.create("data")["Mountpoint"])
    (data / "a" / "b").mkdir(parents=True)
    os.symlink("/a", data / "abs")  # absolute: means the volume's /a
    os.symlink("../../../../..", data / "up")  # climbs to the volume root, no further
    os.symlink(str(work), data / "host")  # a host path: does not exist inside the volume
    assert service.subpath("data", "a/b") == data / "a" / "b"
    assert service.subpath("data", "abs/b") == data / "a" / "b"
    assert service.subpath("data", "up") == data
    with pytest.raises(InvalidParameter, match="cannot access path host/x in the volume: no such file"):
        service.subpath("data", "host/x")
    for bad in ("../x", "/a", ""):
        with pytest.raises(InvalidParameter, match="subpath must be a relative path within the volume"):
            service.subpath("data", bad)


def test_concurrent_acquire_and_remove_never_leave_a_reference_to_a_removed_volume(service: VolumeService) -> None:
    import threading

    errors: list[BaseException] = []

    def user(cid: str) -> None:
        try:
            for _ in range(40):
                service.create("shared")
                try:
                    service.acquire("shared", cid)
                except NotFound:
                    continue  # removed between our create and acquire: fine
                assert service.mount_for("shared").is_dir()
                service.release("shared", cid)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def remover() -> None:
        try:
            for _ in range(80):
                try:
                    service.remove("shared")
                except (InUse, NotFound):
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(f"c{i}",)) for i in range(4)] + [threading.Thread(target=remover)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    volumes = service.list_volumes()["Volumes"]
    for volume in volumes:
        assert Path(volume["Mountpoint"]).is_dir() and service.users(volume["Name"]) == []

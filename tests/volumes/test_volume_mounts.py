"""Volumes backed by a mount: tmpfs and host-directory binds, mounted on use, unmounted after the last user."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.snapshots.mounts import is_mounted, mount_points
from engine.store import MetadataDB
from engine.volumes import MountFailed, VolumeService

from .conftest import TMPFS_OPTS, fstype_at

pytestmark = pytest.mark.needs_root

TMPFS = TMPFS_OPTS


def test_tmpfs_volume_is_a_tmpfs_while_in_use_and_unmounted_after_release(service: VolumeService) -> None:
    created = service.create("scratch", driver_opts=TMPFS)
    assert created["Options"] == TMPFS
    mountpoint = Path(created["Mountpoint"])
    assert fstype_at(mountpoint) is None  # created, not yet used

    service.acquire("scratch", "c1")
    service.acquire("scratch", "c2")
    assert service.mount_for("scratch") == mountpoint
    assert service.mount_for("scratch") == mountpoint  # second user: no second mount on top
    assert fstype_at(mountpoint) == "tmpfs"
    assert mount_points().count(str(mountpoint)) == 1
    assert mountpoint.stat().st_mode & 0o777 == 0o750  # the o= data reached the filesystem
    (mountpoint / "note").write_text("in memory")

    service.release("scratch", "c1")
    assert fstype_at(mountpoint) == "tmpfs"  # c2 still uses it
    service.release("scratch", "c2")
    assert not is_mounted(mountpoint)
    assert list(mountpoint.iterdir()) == []  # the tmpfs content went with it
    service.remove("scratch")


def test_bind_backed_volume_shows_the_host_directory(service: VolumeService, work: Path) -> None:
    host = work / "host-dir"
    host.mkdir()
    (host / "from-host").write_text("hello")
    service.create("shared", driver_opts={"type": "none", "device": str(host), "o": "bind"})
    service.acquire("shared", "c1")
    path = service.mount_for("shared")
    assert (path / "from-host").read_text() == "hello"
    (path / "from-volume").write_text("back")
    assert (host / "from-volume").read_text() == "back"
    assert service.usage("shared") == len("hello") + len("back")

    service.release("shared", "c1")
    assert not is_mounted(path)
    service.remove("shared")
    # Removing the volume never deletes the host directory's content.
    assert sorted(p.name for p in host.iterdir()) == ["from-host", "from-volume"]


def test_read_only_bind_backed_volume(service: VolumeService, work: Path) -> None:
    host = work / "ro-host"
    host.mkdir()
    service.create("ro", driver_opts={"type": "none", "device": str(host), "o": "bind,ro"})
    service.acquire("ro", "c1")
    path = service.mount_for("ro")
    with pytest.raises(OSError, match="Read-only file system"):
        (path / "x").write_text("no")
    service.release("ro", "c1")
    assert not is_mounted(path)


def test_missing_bind_device_fails_at_mount_with_a_clear_error(service: VolumeService, work: Path) -> None:
    service.create("gone", driver_opts={"type": "none", "device": str(work / "nope"), "o": "bind"})
    service.acquire("gone", "c1")
    with pytest.raises(MountFailed, match=r"failed to mount local volume: .*No such file or directory"):
        service.mount_for("gone")


def test_remove_unmounts_a_mount_left_by_a_crash(service: VolumeService, work: Path) -> None:
    host = work / "host-dir"
    host.mkdir()
    (host / "keep").write_text("precious")
    service.create("shared", driver_opts={"type": "none", "device": str(host), "o": "bind"})
    service.acquire("shared", "c1")
    path = service.mount_for("shared")
    # A crash between the container's removal and release: the row is gone, the mount is not.
    service.store.drop_ref("shared", "c1")
    service.remove("shared")
    assert not is_mounted(path)
    assert (host / "keep").read_text() == "precious"


def test_restore_unmounts_what_no_reference_needs(db: MetadataDB, data_root: Path) -> None:
    service = VolumeService(db, data_root)
    service.create("kept", driver_opts=TMPFS)
    service.create("orphan", driver_opts=TMPFS)
    for name in ("kept", "orphan"):
        service.acquire(name, "c1")
        service.mount_for(name)
    service.store.drop_ref("orphan", "c1")  # the daemon died before it could release

    restarted = VolumeService(db, data_root)
    assert restarted.restore().unmounted == ["orphan"]
    assert fstype_at(restarted.mountpoint("kept")) == "tmpfs"
    assert not is_mounted(restarted.mountpoint("orphan"))
    restarted.release("kept", "c1")
    assert not is_mounted(restarted.mountpoint("kept"))


def test_restore_removes_leftover_directories_and_recreates_missing_ones(
    service: VolumeService, work: Path
) -> None:
    host = work / "host-dir"
    host.mkdir()
    (host / "keep").write_text("precious")
    service.create("gone", driver_opts={"type": "none", "device": str(host), "o": "bind"})
    service.acquire("gone", "c1")
    service.mount_for("gone")
    service.create("lost")
    service.mountpoint("lost").rmdir()
    # A removal that died after deleting the row: directory (still mounted) but no row.
    service.store.drop_ref("gone", "c1")
    service.store.delete_if_unused("gone")

    report = service.restore()
    assert report.removed == ["gone"] and report.recreated == ["lost"]
    assert not (service.root / "gone").exists() and service.mountpoint("lost").is_dir()
    assert (host / "keep").read_text() == "precious"


def test_release_container_drops_all_its_references(service: VolumeService) -> None:
    service.create("va", driver_opts=TMPFS)
    service.create("vb")
    for name in ("va", "vb"):
        service.acquire(name, "c1")
    service.acquire("vb", "c2")
    service.mount_for("va")
    assert service.release_container("c1") == ["va", "vb"]
    assert not is_mounted(service.mountpoint("va"))
    assert service.users("va") == [] and service.users("vb") == ["c2"]


def test_a_restarted_daemon_reuses_the_mount_of_a_volume_still_in_use(db: MetadataDB, data_root: Path) -> None:
    VolumeService(db, data_root).create("scratch", driver_opts=TMPFS)
    first = VolumeService(db, data_root)
    first.acquire("scratch", "c1")
    (first.mount_for("scratch") / "state").write_text("kept across the restart")

    second = VolumeService(db, data_root)
    assert second.restore().unmounted == []
    path = second.mount_for("scratch")
    assert mount_points().count(str(path)) == 1 and (path / "state").read_text() == "kept across the restart"
    second.release("scratch", "c1")
    assert not is_mounted(path)

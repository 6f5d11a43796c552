"""Copy-up: an image directory seeds an empty volume once, keeping metadata, never leaving the image root."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from engine.volumes import VolumeService

from .conftest import TMPFS_OPTS

pytestmark = pytest.mark.needs_root


def _try_xattr(path: Path) -> bool:
    try:
        os.setxattr(path, "user.berth.test", b"kept")
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    return True


@pytest.fixture
def outside(work: Path) -> Path:
    """A host directory next to the image that no copy may read."""
    path = work / "outside"
    path.mkdir()
    (path / "secret").write_text("host secret")
    return path


@pytest.fixture
def rootfs(work: Path, outside: Path) -> Path:
    root = work / "rootfs"
    app = root / "srv" / "app"
    app.mkdir(parents=True)
    (app / "bin").write_text("#!/bin/sh\n")
    os.chmod(app / "bin", 0o4755)  # setuid
    os.symlink("bin", app / "bin-link")
    os.symlink("../../../../outside/secret", app / "escape")  # climbs out if followed on the host
    os.link(app / "bin", app / "bin-hardlink")
    owned = app / "owned"
    owned.mkdir()
    (owned / "f").write_text("by 1000")
    os.chown(owned / "f", 1000, 1000)
    os.chown(owned, 1000, 1000)
    os.chmod(owned, 0o750)
    os.mkfifo(app / "fifo", 0o640)
    os.mknod(app / "null", 0o620 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(app / "null", 0o620)  # past the umask
    os.utime(app / "bin", ns=(1_000_000_000, 2_000_000_000))
    os.chmod(app, 0o711)
    os.chown(app, 33, 33)
    # An absolute symlink: inside the container it means <rootfs>/<outside>, never the host's.
    os.symlink(str(outside), root / "srv" / "abs-link")
    os.symlink("../../..", root / "srv" / "up-link")
    return root


def _volume(service: VolumeService, name: str = "data", **kwargs: dict[str, str]) -> Path:
    service.create(name, **kwargs)  # type: ignore[arg-type]
    service.acquire(name, "c1")
    return service.mount_for(name)


def test_copy_up_keeps_owners_modes_links_and_xattrs(service: VolumeService, rootfs: Path) -> None:
    has_xattrs = _try_xattr(rootfs / "srv" / "app" / "bin")
    vol = _volume(service)
    assert service.populate_from("data", rootfs, "/srv/app") is True

    assert sorted(p.name for p in vol.iterdir()) == ["bin", "bin-hardlink", "bin-link", "escape", "fifo", "null",
                                                      "owned"]
    st = os.lstat(vol / "bin")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_mtime_ns == 2_000_000_000
    assert (vol / "bin").read_text() == "#!/bin/sh\n"
    assert os.lstat(vol / "bin-hardlink").st_ino == st.st_ino  # still one file with two names
    assert os.readlink(vol / "bin-link") == "bin"
    assert os.readlink(vol / "escape") == "../../../../outside/secret"  # copied as a link, not its target
    assert stat.S_ISFIFO(os.lstat(vol / "fifo").st_mode)
    null = os.lstat(vol / "null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3) and stat.S_IMODE(null.st_mode) == 0o620
    owned = os.lstat(vol / "owned")
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode)) == (1000, 1000, 0o750)
    assert os.lstat(vol / "owned" / "f").st_uid == 1000
    root_st = os.stat(vol)  # the volume root takes the image directory's owner and mode
    assert (root_st.st_uid, stat.S_IMODE(root_st.st_mode)) == (33, 0o711)
    if has_xattrs:
        assert os.getxattr(vol / "bin", "user.berth.test") == b"kept"

    # Populated once: emptying the volume does not bring the image content back.
    for name in ("bin", "bin-hardlink", "bin-link", "escape", "fifo", "null"):
        (vol / name).unlink()
    (vol / "owned" / "f").unlink()
    (vol / "owned").rmdir()
    assert service.populate_from("data", rootfs, "/srv/app") is False
    assert list(vol.iterdir()) == []


def test_no_copy_into_a_volume_that_has_content(service: VolumeService, rootfs: Path) -> None:
    vol = _volume(service)
    (vol / "mine").write_text("user data")
    assert service.populate_from("data", rootfs, "/srv/app") is False
    assert [p.name for p in vol.iterdir()] == ["mine"]


def test_absolute_symlink_resolves_inside_the_image_root(
    service: VolumeService, rootfs: Path, outside: Path
) -> None:
    vol = _volume(service)
    # /srv/abs-link -> <outside>: in the image root that path does not exist, so nothing is copied.
    assert service.populate_from("data", rootfs, "/srv/abs-link") is False
    assert list(vol.iterdir()) == []
    assert (outside / "secret").read_text() == "host secret"


def test_dotdot_symlink_stops_at_the_image_root(service: VolumeService, rootfs: Path) -> None:
    vol = _volume(service)
    # /srv/up-link -> ../../.. is the image's own / inside the container, not the host's.
    assert service.populate_from("data", rootfs, "/srv/up-link") is True
    assert sorted(p.name for p in vol.iterdir()) == ["srv"]
    assert not (vol / "outside").exists()


def test_missing_or_file_path_copies_nothing(service: VolumeService, rootfs: Path) -> None:
    _volume(service)
    assert service.populate_from("data", rootfs, "/no/such/dir") is False
    _volume(service, "other")
    assert service.populate_from("other", rootfs, "/srv/app/bin") is False


def test_copy_up_lands_in_a_tmpfs_volume(service: VolumeService, rootfs: Path) -> None:
    vol = _volume(service, "scratch", driver_opts=TMPFS_OPTS)
    assert service.populate_from("scratch", rootfs, "/srv/app/owned") is True
    assert (vol / "f").read_text() == "by 1000"
    service.release("scratch", "c1")
    assert not (vol / "f").exists()


def test_a_failed_copy_leaves_the_volume_empty_and_unpopulated(service: VolumeService, work: Path) -> None:
    image = work / "big-image"
    (image / "data").mkdir(parents=True)
    (image / "data" / "small").write_text("fits")
    (image / "data" / "zbig").write_bytes(b"\0" * (2 << 20))  # more than the 1 MiB tmpfs holds
    vol = _volume(service, "tiny", driver_opts=TMPFS_OPTS)
    with pytest.raises(OSError) as info:
        service.populate_from("tiny", image, "/data")
    assert info.value.errno == errno.ENOSPC
    assert list(vol.iterdir()) == []
    assert service.get("tiny").populated is False

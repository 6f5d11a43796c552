"""Hostile layers: every escape attempt is refused or neutralized, and nothing outside the target changes.

The ``sentinel`` fixture checks, after each test, that the directory next to
the target and the host's /etc are exactly as they were.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from engine.snapshots.errors import LayerError
from engine.snapshots.layer_apply import apply_layer
from tests.snapshots.helpers import TarBuilder

pytestmark = pytest.mark.needs_root


def apply(target: Path, tb: TarBuilder) -> None:
    apply_layer(target, io.BytesIO(tb.build()))


def assert_refused(target: Path, tb: TarBuilder, entry: str) -> None:
    with pytest.raises(LayerError) as info:
        apply(target, tb)
    assert info.value.entry == entry
    # Nothing partially applied is visible, and no temp dir is left behind.
    assert list(target.iterdir()) == []
    assert sorted(p.name for p in target.parent.iterdir()) == ["sentinel", "target"]


def test_dotdot_name_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().file("ok", b"1").file("../sentinel/pwned", b"x"), "../sentinel/pwned")


def test_dotdot_deep_name_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().file("a/b/../../../sentinel/secret", b"x"), "a/b/../../../sentinel/secret")


def test_absolute_name_lands_inside_the_root(target: Path) -> None:
    apply(target, TarBuilder().file("/etc/berthtest-pwned", b"x"))
    assert (target / "etc" / "berthtest-pwned").read_bytes() == b"x"
    assert not Path("/etc/berthtest-pwned").exists()


def test_write_through_absolute_symlink_stays_inside(target: Path) -> None:
    tb = TarBuilder().dir("etc").symlink("a", "/etc").file("a/berthtest-pwned", b"x")
    apply(target, tb)
    assert (target / "etc" / "berthtest-pwned").read_bytes() == b"x"
    assert os.readlink(target / "a") == "/etc"


def test_write_through_absolute_symlink_to_missing_dir_is_refused(target: Path) -> None:
    tb = TarBuilder().symlink("a", "/etc").file("a/passwd", b"root::0:0::/:/bin/sh\n")
    assert_refused(target, tb, "a/passwd")


def test_write_through_dotdot_symlink_is_clamped_to_root(target: Path) -> None:
    apply(target, TarBuilder().symlink("a", "../../..").file("a/x", b"x"))
    assert (target / "x").read_bytes() == b"x"
    assert os.readlink(target / "a") == "../../.."


def test_symlink_to_sentinel_cannot_be_written_through(target: Path) -> None:
    tb = TarBuilder().symlink("s", "../sentinel").file("s/secret", b"pwned")
    assert_refused(target, tb, "s/secret")


def test_symlink_to_host_file_is_replaced_not_followed(target: Path) -> None:
    apply(target, TarBuilder().symlink("passwd", "/etc/passwd").file("passwd", b"mine"))
    assert (target / "passwd").read_bytes() == b"mine"
    assert not (target / "passwd").is_symlink()


def test_symlink_to_sentinel_file_is_replaced_not_followed(target: Path) -> None:
    tb = TarBuilder().symlink("f", str(target.parent / "sentinel" / "secret")).file("f", b"mine")
    apply(target, tb)
    assert (target / "f").read_bytes() == b"mine"


def test_directory_entry_replaces_symlink(target: Path) -> None:
    tb = TarBuilder().symlink("d", "/etc").dir("d", mode=0o700).file("d/x", b"x")
    apply(target, tb)
    assert (target / "d").is_dir() and not (target / "d").is_symlink()
    assert (target / "d" / "x").read_bytes() == b"x"


def test_hardlink_to_absolute_host_path_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().hardlink("pw", "/etc/passwd"), "pw")


def test_hardlink_climbing_out_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().hardlink("s", "../sentinel/secret"), "s")


def test_hardlink_through_symlink_to_host_is_refused(target: Path) -> None:
    tb = TarBuilder().symlink("e", "/etc").hardlink("pw", "e/passwd")
    assert_refused(target, tb, "pw")


def test_hardlink_through_symlink_to_sentinel_is_refused(target: Path) -> None:
    tb = TarBuilder().symlink("s", str(target.parent / "sentinel")).hardlink("h", "s/secret")
    assert_refused(target, tb, "h")


def test_hardlink_to_symlink_links_the_symlink_itself(target: Path) -> None:
    apply(target, TarBuilder().symlink("s", "/etc/passwd").hardlink("h", "s"))
    assert os.readlink(target / "h") == "/etc/passwd"
    assert os.lstat(target / "h").st_ino == os.lstat(target / "s").st_ino


def test_rewriting_a_hardlinked_name_does_not_write_through(target: Path) -> None:
    apply(target, TarBuilder().file("f", b"original").hardlink("h", "f").file("h", b"replaced"))
    assert (target / "f").read_bytes() == b"original"
    assert (target / "h").read_bytes() == b"replaced"


def test_whiteout_through_symlink_stays_inside(target: Path) -> None:
    tb = TarBuilder().dir("etc").symlink("a", "/etc").file("a/.wh.passwd")
    apply(target, tb)
    st = os.lstat(target / "etc" / "passwd")
    assert st.st_rdev == 0 and (st.st_mode & 0o170000) == 0o020000


def test_opaque_through_symlink_to_host_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().symlink("a", "/etc").file("a/.wh..wh..opq"), "a/.wh..wh..opq")


def test_whiteout_of_dotdot_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().dir("d").file("d/.wh.."), "d/.wh..")


def test_magic_link_parent_is_refused(target: Path) -> None:
    tb = TarBuilder().symlink("p", "/proc/self/root/etc").file("p/berthtest-pwned", b"x")
    assert_refused(target, tb, "p/berthtest-pwned")


def test_symlink_loop_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().symlink("a", "b").symlink("b", "a").file("a/x", b"x"), "a/x")


def test_file_used_as_parent_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().file("f", b"x").file("f/x", b"x"), "f/x")


def test_forged_overlay_xattrs_are_dropped(target: Path) -> None:
    tb = TarBuilder().dir("d", xattrs={"trusted.overlay.redirect": b"/etc", "trusted.overlay.opaque": b"y"})
    apply(target, tb)
    assert os.listxattr(target / "d") == []


def test_symlink_targets_are_stored_verbatim_not_checked(target: Path) -> None:
    apply(target, TarBuilder().symlink("up", "../../../../etc/shadow").symlink("abs", "/etc/shadow"))
    assert os.readlink(target / "up") == "../../../../etc/shadow"
    assert os.readlink(target / "abs") == "/etc/shadow"


def test_corrupt_tar_is_refused_and_leaves_nothing(target: Path) -> None:
    data = TarBuilder().file("a", b"x" * 5000).build()
    with pytest.raises(LayerError):
        apply_layer(target, io.BytesIO(data[:1500]))
    assert list(target.iterdir()) == []


def test_unsupported_entry_type_is_refused(target: Path) -> None:
    tb = TarBuilder()
    ti = tarfile.TarInfo("vol")
    ti.type = tarfile.GNUTYPE_LONGNAME[:0] + b"V"
    tb.members.append((ti, None))
    assert_refused(target, tb, "vol")


def test_root_entry_must_be_a_directory(target: Path) -> None:
    assert_refused(target, TarBuilder().symlink("./", "/etc"), "./")


def test_root_entry_sets_the_root_mode(target: Path) -> None:
    apply(target, TarBuilder().dir("./", mode=0o700, uid=7, gid=8).file("x", b"x"))
    st = os.lstat(target)
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o700, 7, 8)


def test_hardlink_to_directory_is_refused(target: Path) -> None:
    assert_refused(target, TarBuilder().dir("d").hardlink("h", "d"), "h")


def test_pax_path_record_cannot_smuggle_dotdot(target: Path) -> None:
    tb = TarBuilder().file("innocent", b"x")
    tb.members[0][0].pax_headers = {"path": "../sentinel/pwned"}
    assert_refused(target, tb, "../sentinel/pwned")


def test_pax_linkpath_record_cannot_smuggle_a_host_path(target: Path) -> None:
    tb = TarBuilder().file("f", b"x").hardlink("h", "f")
    tb.members[1][0].pax_headers = {"linkpath": "/etc/shadow"}
    assert_refused(target, tb, "h")


def test_symlink_to_root_then_deep_write_stays_inside(target: Path) -> None:
    apply(target, TarBuilder().dir("etc").symlink("r", "/").file("r/etc/berthtest-pwned", b"x"))
    assert (target / "etc" / "berthtest-pwned").read_bytes() == b"x"


def test_garbage_xattr_record_is_refused_cleanly(target: Path) -> None:
    tb = TarBuilder().file("f", b"x")
    tb.members[0][0].pax_headers = {"LIBARCHIVE.xattr.user.x": "!!!not base64!!!"}
    assert_refused(target, tb, "f")


def test_tree_is_private_while_it_is_written(target: Path) -> None:
    """Until the rename, other host users cannot enter the tree (a world-writable dir in the layer
    would otherwise let them race symlinks into it)."""
    seen: list[int] = []

    class Spy(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            for p in target.parent.iterdir():
                if p.name.startswith(".target.apply-"):
                    seen.append(os.stat(p).st_mode & 0o777)
            return super().read(n)

    data = TarBuilder().dir("./", mode=0o755).dir("tmp", mode=0o1777).file("tmp/x", b"x" * 100_000).build()
    apply_layer(target, Spy(data))
    assert seen and set(seen) == {0o700}
    assert os.stat(target).st_mode & 0o7777 == 0o755
    assert os.stat(target / "tmp").st_mode & 0o7777 == 0o1777

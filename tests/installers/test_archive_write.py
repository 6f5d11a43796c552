"""engine/images/archive_write.py: deterministic layer tars and `docker save` archives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from engine.images.archive_write import (
    ArchiveImage,
    InvalidImage,
    InvalidReference,
    parse_tagged_reference,
    write_docker_archive,
    write_layer_tar,
)
from tests.installers import oci_schemas

FIXED_MTIME = 1700000000


def _make_tree(root: Path) -> None:
    """A small rootfs with every kind of entry a layer holds."""
    (root / "bin").mkdir(parents=True)
    (root / "bin/busybox").write_bytes(b"\x7fELF pretend")
    (root / "bin/busybox").chmod(0o4755)  # setuid must survive
    (root / "bin/sh").symlink_to("/bin/busybox")
    os.link(root / "bin/busybox", root / "bin/ls")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    deep = root / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "long-name.txt").write_text("pax path header\n")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)


def _layer_bytes(root: Path, **options: object) -> bytes:
    out = io.BytesIO()
    write_layer_tar(root, out, **options)  # type: ignore[arg-type]
    return out.getvalue()


def test_layer_tar_is_byte_identical_for_equal_trees_built_at_different_times(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _make_tree(first)
    _make_tree(second)
    # Different on-disk times and creation order must not show in the output.
    os.utime(second / "etc/passwd", (1, 1))
    assert _layer_bytes(first, mtime=FIXED_MTIME) == _layer_bytes(second, mtime=FIXED_MTIME)


def test_layer_tar_entries_are_sorted_relative_and_normalized(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    data = _layer_bytes(tmp_path, mtime=FIXED_MTIME)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[:5] == ["bin", "bin/busybox", "bin/ls", "bin/sh", "d" * 60]
    assert all(not n.startswith(("/", "./")) for n in names)
    assert {m.mtime for m in members} == {FIXED_MTIME}
    assert {(m.uname, m.gname) for m in members} == {("", "")}
    by_name = {m.name: m for m in members}
    assert by_name["bin/busybox"].mode == 0o4755
    assert by_name["bin/ls"].islnk() and by_name["bin/ls"].linkname == "bin/busybox"
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "/bin/busybox"
    assert by_name["fifo"].isfifo()
    assert by_name["null"].ischr() and (by_name["null"].devmajor, by_name["null"].devminor) == (1, 3)
    assert by_name["tmp"].mode == 0o1777
    assert f"{'d' * 60}/{'e' * 60}/long-name.txt" in by_name
    # No pax record may carry a time (mtime/atime/ctime): they would vary between builds.
    assert b"mtime=" not in data and b"atime=" not in data and b"ctime=" not in data


def test_layer_tar_returns_the_sha256_of_what_it_wrote(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    out = io.BytesIO()
    digest = write_layer_tar(tmp_path, out, mtime=FIXED_MTIME)
    assert digest.digest == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
    assert digest.size == len(out.getvalue())


def test_layer_tar_owner_override_and_on_disk_owners(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    os.chown(tmp_path / "f", 1234, 5678)
    with tarfile.open(fileobj=io.BytesIO(_layer_bytes(tmp_path))) as tar:
        assert (tar.getmember("f").uid, tar.getmember("f").gid) == (1234, 5678)
    with tarfile.open(fileobj=io.BytesIO(_layer_bytes(tmp_path, owner=(0, 0)))) as tar:
        assert (tar.getmember("f").uid, tar.getmember("f").gid) == (0, 0)


def test_layer_tar_converts_overlay_whiteouts(tmp_path: Path) -> None:
    os.mknod(tmp_path / "deleted", stat.S_IFCHR, os.makedev(0, 0))
    (tmp_path / "replaced").mkdir()
    os.setxattr(tmp_path / "replaced", "trusted.overlay.opaque", b"y")
    with tarfile.open(fileobj=io.BytesIO(_layer_bytes(tmp_path, overlay_whiteouts=True))) as tar:
        names = tar.getnames()
        assert tar.getmember(".wh.deleted").isreg()
    assert names == [".wh.deleted", "replaced", "replaced/.wh..wh..opq"]


def test_layer_tar_keeps_file_capabilities(tmp_path: Path) -> None:
    (tmp_path / "ping").write_bytes(b"binary")
    # cap_net_raw+ep as setcap writes it (VFS_CAP_REVISION_2 little-endian struct).
    caps = bytes.fromhex("0100000200200000000000000000000000000000")
    try:
        os.setxattr(tmp_path / "ping", "security.capability", caps)
    except OSError as e:
        pytest.skip(f"filesystem refuses security.capability: {e}")
    with tarfile.open(fileobj=io.BytesIO(_layer_bytes(tmp_path))) as tar:
        value = tar.getmember("ping").pax_headers["SCHILY.xattr.security.capability"]
    assert value.encode("utf-8", "surrogateescape") == caps


def _one_layer_image(tmp_path: Path, tags: list[str]) -> ArchiveImage:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "hello").write_text("hi\n")
    layer = tmp_path / "layer.tar"
    with layer.open("wb") as f:
        diff_id = write_layer_tar(rootfs, f, mtime=FIXED_MTIME)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "created": "2023-11-14T22:13:20Z",
        "rootfs": {"type": "layers", "diff_ids": [diff_id.digest]},
    }
    return ArchiveImage(repo_tags=tags, config=json.dumps(config).encode(), layers=[layer])


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar}  # type: ignore[union-attr]


def test_docker_archive_has_both_layouts_and_content_addressed_blobs(tmp_path: Path) -> None:
    image = _one_layer_image(tmp_path, ["busybox:latest", "localhost:5000/team/app:v1"])
    out = io.BytesIO()
    write_docker_archive(out, [image])
    members = _members(out.getvalue())

    assert list(members)[:2] == ["blobs", "blobs/sha256"]
    for name, data in members.items():
        if name.startswith("blobs/sha256/") and data:
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(members["manifest.json"])
    assert manifest == [
        {
            "Config": f"blobs/sha256/{hashlib.sha256(image.config).hexdigest()}",
            "RepoTags": ["busybox:latest", "localhost:5000/team/app:v1"],
            "Layers": [f"blobs/sha256/{hashlib.sha256(image.layers[0].read_bytes()).hexdigest()}"],
        }
    ]
    layer_hex = manifest[0]["Layers"][0].rsplit("/", 1)[1]
    assert json.loads(members["repositories"]) == {
        "busybox": {"latest": layer_hex},
        "localhost:5000/team/app": {"v1": layer_hex},
    }
    index = json.loads(members["index.json"])
    assert oci_schemas.errors("index", index) == []
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "docker.io/library/busybox:latest",
        "localhost:5000/team/app:v1",
    ]
    oci_manifest = json.loads(members["blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]])
    assert oci_schemas.errors("manifest", oci_manifest) == []
    assert oci_manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert oci_schemas.errors("layout", json.loads(members["oci-layout"])) == []


def test_docker_archive_rejects_layers_that_disagree_with_the_config(tmp_path: Path) -> None:
    image = _one_layer_image(tmp_path, ["x:latest"])
    image.layers[0].write_bytes(image.layers[0].read_bytes() + b"\0" * 512)
    with pytest.raises(InvalidImage, match="diff_ids"):
        write_docker_archive(io.BytesIO(), [image])


@pytest.mark.parametrize(
    ("text", "familiar", "full", "tag"),
    [
        ("busybox", "busybox", "docker.io/library/busybox", "latest"),
        ("debian:bookworm-slim", "debian", "docker.io/library/debian", "bookworm-slim"),
        ("docker.io/library/busybox:1", "busybox", "docker.io/library/busybox", "1"),
        ("me/app:v2", "me/app", "docker.io/me/app", "v2"),
        ("localhost:5000/app", "localhost:5000/app", "localhost:5000/app", "latest"),
    ],
)
def test_tagged_references_normalize_like_the_docker_cli(text: str, familiar: str, full: str, tag: str) -> None:
    ref = parse_tagged_reference(text)
    assert (ref.familiar_name, ref.full_name, ref.tag) == (familiar, full, tag)


@pytest.mark.parametrize("text", ["Busybox", "busybox@sha256:" + "0" * 64, "busybox:", "a//b"])
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_tagged_reference(text)


def test_images_sharing_a_layer_store_it_once(tmp_path: Path) -> None:
    first = _one_layer_image(tmp_path, ["one:latest"])
    config = json.loads(first.config)
    config["config"]["Cmd"] = ["/other"]
    second = ArchiveImage(repo_tags=["two:latest"], config=json.dumps(config).encode(), layers=first.layers)
    out = io.BytesIO()
    write_docker_archive(out, [first, second])
    members = _members(out.getvalue())
    manifest = json.loads(members["manifest.json"])
    assert [m["RepoTags"] for m in manifest] == [["one:latest"], ["two:latest"]]
    assert manifest[0]["Layers"] == manifest[1]["Layers"]
    assert manifest[0]["Config"] != manifest[1]["Config"]
    # 1 layer + 2 configs + 2 OCI manifests.
    assert len([n for n in members if n.startswith("blobs/sha256/") and members[n]]) == 5
    assert len(json.loads(members["index.json"])["manifests"]) == 2


def test_an_archive_is_byte_identical_when_written_twice(tmp_path: Path) -> None:
    image = _one_layer_image(tmp_path, ["busybox:latest"])
    first, second = io.BytesIO(), io.BytesIO()
    write_docker_archive(first, [image], mtime=FIXED_MTIME)
    write_docker_archive(second, [image], mtime=FIXED_MTIME)
    assert first.getvalue() == second.getvalue()


def test_an_image_without_layers_is_refused(tmp_path: Path) -> None:
    image = _one_layer_image(tmp_path, ["x:latest"])
    config = json.loads(image.config)
    config["rootfs"]["diff_ids"] = []
    empty = ArchiveImage(repo_tags=["x:latest"], config=json.dumps(config).encode(), layers=[])
    with pytest.raises(InvalidImage, match="no layers"):
        write_docker_archive(io.BytesIO(), [empty])

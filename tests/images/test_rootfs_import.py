"""docker import: one-layer images from rootfs tarballs, with --change and messages."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images.config_changes import apply_changes
from engine.images.digests import sha256_digest
from engine.images.errors import InvalidArchive, InvalidParameter
from engine.images.image_store import ImageStore
from engine.images.platforms import host_architecture
from engine.images.rootfs_import import import_rootfs

from .image_factory import layer_tar

ROOTFS = layer_tar({"bin/sh": b"#!" + b"x" * 500, "etc/hostname": b"box\n"})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    image_store = ImageStore(tmp_path / "berthtest-data")
    yield image_store
    image_store.close()


def test_import_makes_a_one_layer_image(store: ImageStore, tmp_path: Path) -> None:
    tarball = tmp_path / "rootfs.tar.gz"
    tarball.write_bytes(gzip.compress(ROOTFS))
    record = import_rootfs(store, tarball, "imported", changes=['CMD ["/bin/sh"]', "ENV A=1 B=two"])
    assert [t.familiar() for t in record.tags] == ["imported:latest"]
    (layer,) = record.layers
    assert layer.diff_id == sha256_digest(ROOTFS) == layer.blob_digest
    assert layer.unpacked_size == 506
    doc = store.inspect("imported")
    assert doc["Config"]["Cmd"] == ["/bin/sh"]
    assert doc["Config"]["Env"] == ["A=1", "B=two"]
    assert (doc["Os"], doc["Architecture"]) == ("linux", host_architecture())
    assert doc["Comment"] == "Imported from -"
    assert store.history("imported")[0]["Comment"] == "Imported from -"


def test_import_from_stream_with_message(store: ImageStore) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk = self._data.read(min(len(buffer), 777))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    record = import_rootfs(store, Pipe(gzip.compress(ROOTFS)), None, message="from a pipe")  # type: ignore[arg-type]
    assert record.tags == ()
    assert store.inspect(record.id)["Comment"] == "from a pipe"


def test_not_a_tarball_is_refused_and_leaves_nothing(store: ImageStore, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not a tar archive" * 100)
    with pytest.raises(InvalidArchive):
        import_rootfs(store, junk, "x")
    assert list(store.content.walk()) == []
    assert store.list() == []


def test_bad_change_is_refused_before_anything_is_stored(store: ImageStore, tmp_path: Path) -> None:
    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(ROOTFS)
    with pytest.raises(InvalidParameter, match="RUN is not a valid change command"):
        import_rootfs(store, tarball, "x", changes=["RUN rm -rf /"])
    assert list(store.content.walk()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (["CMD echo hi"], {"Cmd": ["/bin/sh", "-c", "echo hi"]}),
        (['ENTRYPOINT ["/init", "-v"]'], {"Entrypoint": ["/init", "-v"]}),
        (["ENV A=1", "ENV A=2"], {"Env": ["A=2"]}),
        (["ENV LEGACY some value"], {"Env": ["LEGACY=some value"]}),
        (['LABEL a=1 "b c"="d e"'], {"Labels": {"a": "1", "b c": "d e"}}),
        (["EXPOSE 80 53/UDP"], {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}),
        (['VOLUME ["/data", "/logs"]'], {"Volumes": {"/data": {}, "/logs": {}}}),
        (["WORKDIR /app", "WORKDIR sub"], {"WorkingDir": "/app/sub"}),
        (["USER 1000:1000", "STOPSIGNAL SIGTERM"], {"User": "1000:1000", "StopSignal": "SIGTERM"}),
        (["HEALTHCHECK CMD curl -f localhost"], {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"]}}),
        (["onbuild RUN make"], {"OnBuild": ["RUN make"]}),
    ],
)
def test_changes(changes: list[str], expected: dict[str, object]) -> None:
    assert apply_changes({}, changes) == expected


@pytest.mark.parametrize("change", ["FROM x", "ENV", "EXPOSE http", "HEALTHCHECK --interval=1s CMD x", "LABEL =x"])
def test_invalid_changes(change: str) -> None:
    with pytest.raises(InvalidParameter):
        apply_changes({}, [change])

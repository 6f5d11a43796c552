"""ImageStore: lookups like Docker's, tag/untag/remove semantics, one-transaction adds, gc."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from engine.images.errors import Conflict, InvalidParameter, InvalidReference, NotFound
from engine.images.image_records import LayerRecord, NewImage
from engine.images.image_store import ImageStore
from engine.images.reference import parse_docker_ref

from .image_factory import make_image


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    image_store = ImageStore(tmp_path / "berthtest-data")
    yield image_store
    image_store.close()


def _blob_count(store: ImageStore) -> int:
    return len(list(store.content.walk()))


def test_added_image_is_found_every_way_docker_allows(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"bin/a": b"a" * 10}], tags=["busybox:latest"]))
    hex_id = record.id.removeprefix("sha256:")
    for name in (
        "busybox",
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox:latest",
        record.id,
        hex_id,
        hex_id[:12],
        hex_id[:1],
        "sha256:" + hex_id[:5],
    ):
        assert store.resolve(name) == record.id, name
    assert record.tags == (parse_docker_ref("busybox"),)
    assert record.size == 10
    with pytest.raises(NotFound, match="No such image: busybox:other"):
        store.resolve("busybox:other")
    with pytest.raises(InvalidReference, match="must be lowercase"):
        store.resolve("BusyBox")


def test_ambiguous_id_prefix_is_not_found(store: ImageStore) -> None:
    ids = [store.add_image(make_image(store, [{"f": bytes([i])}])).id for i in range(40)]
    # 40 ids over 16 first hex digits: some first digit is shared.
    first_digits = [i[7] for i in ids]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    with pytest.raises(NotFound, match="ambiguous"):
        store.resolve(shared)


def test_repo_digest_lookup(store: ImageStore) -> None:
    image = make_image(store, [{"f": b"x"}], tags=["app:1"])
    manifest_digest = store.content.put(b'{"fake": "manifest"}')
    repo_digest = parse_docker_ref("app").repository().with_digest(manifest_digest)
    record = store.add_image(dataclasses.replace(image, repo_digests=[repo_digest]))
    assert store.resolve(f"app@{manifest_digest}") == record.id
    assert store.inspect("app:1")["RepoDigests"] == [f"app@{manifest_digest}"]


def test_failed_add_leaves_no_trace(store: ImageStore) -> None:
    good = make_image(store, [{"f": b"1"}], tags=["good:1"])
    bad = make_image(store, [{"f": b"2"}], tags=["bad:1"])
    # The second image claims a layer the config does not list: the whole batch fails.
    bad = dataclasses.replace(bad, layers=[*bad.layers, good.layers[0]])
    with pytest.raises(InvalidParameter, match="diff_ids"):
        store.add_images([good, bad])
    assert store.list() == []
    with pytest.raises(NotFound):
        store.resolve("good:1")


def test_failure_inside_the_transaction_rolls_back(store: ImageStore) -> None:
    good = make_image(store, [{"f": b"1"}], tags=["good:1"])
    # A tag that is not a normalized name:tag fails after the first image's rows
    # were written in the same transaction.
    with pytest.raises(InvalidReference):
        store.add_images([good, dataclasses.replace(good, tags=[parse_docker_ref("x@sha256:" + "0" * 64)])])
    conn = store.db.connection()
    for table in ("images", "image_layers", "image_tags"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_add_refuses_missing_blobs(store: ImageStore) -> None:
    image = make_image(store, [{"f": b"1"}])
    missing = LayerRecord("sha256:" + "1" * 64, "sha256:" + "1" * 64, "x", 1, 1)
    with pytest.raises(NotFound, match="not in the content store"):
        store.add_image(NewImage(image.config_digest, [missing]))


def test_tag_moves_and_untag_keeps_image_until_last_name(store: ImageStore) -> None:
    first = store.add_image(make_image(store, [{"f": b"1"}], tags=["app:v1"]))
    second = store.add_image(make_image(store, [{"f": b"2"}], tags=["other:1"]))
    assert store.tag("app:v1", "app:v2").familiar() == "app:v2"
    store.tag(second.id, "app:v1")  # moves the tag; the first image keeps app:v2
    assert store.resolve("app:v1") == second.id
    assert [r.familiar() for r in store.get(first.id).tags] == ["app:v2"]
    assert store.remove("app:v1") == [{"Untagged": "app:v1"}]
    assert store.resolve("other:1") == second.id
    with pytest.raises(InvalidParameter, match="digest"):
        store.tag("app:v2", "app@sha256:" + "a" * 64)


def test_remove_by_id_with_several_repositories_needs_force(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"f": b"1"}], tags=["one:1", "two:1"]))
    with pytest.raises(Conflict) as err:
        store.remove(record.id[7:19])
    assert str(err.value) == (
        f"conflict: unable to delete {record.id[7:19]} (must be forced) - "
        "image is referenced in multiple repositories"
    )
    report = store.remove(record.id[7:19], force=True)
    assert {"Deleted": record.id} in report
    assert {"Untagged": "one:1"} in report and {"Untagged": "two:1"} in report
    assert store.list() == []


def test_remove_last_tag_deletes_image_layers_and_blobs(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"a": b"1"}, {"b": b"2"}], tags=["app:1"]))
    assert _blob_count(store) == 3
    report = store.remove("app:1")
    assert report[:2] == [{"Untagged": "app:1"}, {"Deleted": record.id}]
    assert len(report) == 4  # and both layers' chain ids
    assert _blob_count(store) == 0


def test_remove_by_id_with_one_tag_untags_and_deletes(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"a": b"1"}], tags=["app:1"]))
    assert store.remove(record.id)[:2] == [{"Untagged": "app:1"}, {"Deleted": record.id}]


def test_shared_layers_survive_removal_of_one_image(store: ImageStore) -> None:
    base = {"base": b"base"}
    one = store.add_image(make_image(store, [base, {"a": b"1"}], tags=["one:1"]))
    two = store.add_image(make_image(store, [base, {"b": b"2"}], tags=["two:1"]))
    report = store.remove("one:1")
    deleted = [item["Deleted"] for item in report if "Deleted" in item]
    assert one.layers[0].diff_id not in deleted  # chain id of the shared base layer
    assert store.content.has(two.layers[0].blob_digest)
    assert store.content.has(two.id)


class _Users:
    def __init__(self, users: dict[str, list[tuple[str, bool]]]) -> None:
        self.users = users

    def containers_using(self, image_id: str) -> Sequence[tuple[str, bool]]:
        return self.users.get(image_id, [])


def test_containers_block_removal_like_docker(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"a": b"1"}], tags=["app:1"]))
    store.users = _Users({record.id: [("c" * 64, False)]})
    with pytest.raises(Conflict, match="container cccccccccccc is using its referenced image"):
        store.remove("app:1")
    store.users = _Users({record.id: [("c" * 64, True)]})
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running container"):
        store.remove(record.id, force=True)
    # Forcing by name only untags: the running container keeps its (now dangling) image.
    assert store.remove("app:1", force=True) == [{"Untagged": "app:1"}]
    assert store.get(record.id).tags == ()


def test_child_images_block_parent_removal(store: ImageStore) -> None:
    parent = store.add_image(make_image(store, [{"a": b"1"}], tags=["base:1"]))
    child = store.add_image(make_image(store, [{"a": b"1"}, {"b": b"2"}], tags=["app:1"], parent=parent.id))
    with pytest.raises(Conflict, match="dependent child images"):
        store.remove(parent.id, force=True)
    store.remove("base:1")  # untag only: the parent is still needed
    assert store.resolve(parent.id) == parent.id
    report = store.remove("app:1")  # prunes the now-unnamed parent too
    assert {"Deleted": child.id} in report and {"Deleted": parent.id} in report


def test_inspect_shape(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"a": b"12345"}], tags=["app:1"]))
    doc = store.inspect("app:1")
    assert doc["Id"] == record.id
    assert doc["RepoTags"] == ["app:1"]
    assert doc["RootFS"] == {"Type": "layers", "Layers": record.diff_ids}
    assert doc["Config"]["Cmd"] == ["sh"]
    assert doc["Config"]["Labels"] == {"origin": "test"}
    assert (doc["Os"], doc["Architecture"], doc["Size"]) == ("linux", "amd64", 5)
    assert doc["Created"] == "2024-01-02T03:04:05.123456789Z"
    assert doc["Metadata"]["LastTagTime"].endswith("Z")


def test_history_newest_first_with_layer_sizes(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"a": b"123"}, {"b": b"4567"}], tags=["app:1"]))
    rows = store.history("app:1")
    assert [r["CreatedBy"] for r in rows] == ['CMD ["sh"]', "ADD layer1", "ADD layer0"]
    assert [r["Size"] for r in rows] == [0, 4, 3]
    assert rows[0]["Id"] == record.id and rows[0]["Tags"] == ["app:1"]
    assert [r["Id"] for r in rows[1:]] == ["<missing>", "<missing>"]
    assert rows[0]["Created"] == 1704164646


def test_summaries(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"a": b"1"}], tags=["app:1"]))
    (summary,) = store.summaries()
    assert summary["Id"] == record.id and summary["RepoTags"] == ["app:1"]
    assert summary["Labels"] == {"origin": "test"}
    assert summary["Created"] == 1704164645


def test_gc_keeps_referenced_and_leased_blobs(store: ImageStore) -> None:
    record = store.add_image(make_image(store, [{"a": b"1"}], tags=["app:1"]))
    orphan = store.content.put(b"orphan")
    with store.lease() as lease:
        in_flight = store.content.put(b"in flight")
        lease.protect(in_flight)
        assert store.gc() == [orphan]
        assert store.content.has(in_flight)
    assert store.gc() == [in_flight]
    assert store.content.has(record.id)
    assert store.content.has(record.layers[0].blob_digest)


def test_prune_dangling_then_unused(store: ImageStore) -> None:
    tagged = store.add_image(make_image(store, [{"a": b"1" * 100}], tags=["app:1"]))
    dangling = store.add_image(make_image(store, [{"b": b"2" * 200}]))
    used = store.add_image(make_image(store, [{"c": b"3"}]))
    store.users = _Users({used.id: [("c" * 64, False)]})
    result = store.prune()
    assert result["ImagesDeleted"][0] == {"Deleted": dangling.id}
    assert result["SpaceReclaimed"] > 200
    assert {r.id for r in store.list()} == {tagged.id, used.id}
    result = store.prune(dangling_only=False)
    assert result["ImagesDeleted"][:2] == [{"Untagged": "app:1"}, {"Deleted": tagged.id}]
    assert [r.id for r in store.list()] == [used.id]
    assert store.prune() == {"ImagesDeleted": None, "SpaceReclaimed": 0}

"""Inspect, history and list documents match the Engine API v1.51 swagger definitions."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.images.archive_load import load
from engine.images.image_store import ImageStore

from .archive_factory import docker_save_members, write_tar
from .image_factory import layer_tar

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the Engine API swagger file")

SWAGGER = Path(__file__).resolve().parents[3] / "shared" / "specs" / "docker-engine-api-v1.51.yaml"
if not SWAGGER.is_file():
    SWAGGER = Path("/work/shared/specs/docker-engine-api-v1.51.yaml")


def _nullable(node: Any) -> Any:
    """Swagger 2's `x-nullable: true` as JSON Schema: also accept null."""
    if isinstance(node, dict):
        node = {key: _nullable(value) for key, value in node.items()}
        if node.get("x-nullable") is True:
            if "type" in node:
                node["type"] = [node["type"], "null"]
            elif "$ref" in node:
                node = {"anyOf": [{"$ref": node["$ref"]}, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    return node


@cache
def _swagger() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SWAGGER.read_text())
    return loaded


def _schema(item: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    item = copy.deepcopy(item)
    if strict:
        item["additionalProperties"] = False  # a misspelled key fails too
    return {"definitions": _nullable(_swagger()["definitions"]), **_nullable(item)}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageStore]:
    image_store = ImageStore(tmp_path / "berthtest-data")
    members, _ = docker_save_members(
        [layer_tar({"a": b"1"}), layer_tar({"b": b"22"})],
        ["app:1"],
        comment="made by a test",
        author="berth",
        variant="v2",
    )
    load(image_store, write_tar(tmp_path / "a.tar", members))
    yield image_store
    image_store.close()


def test_inspect_matches_image_inspect_definition(store: ImageStore) -> None:
    document = store.inspect("app:1")
    schema = _schema(_swagger()["definitions"]["ImageInspect"])
    jsonschema.Draft4Validator(schema).validate(document)
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Config", "Architecture",
                "Os", "Size", "RootFS", "Metadata", "GraphDriver"):
        assert key in document
    assert document["Comment"] == "made by a test" and document["Variant"] == "v2"


def test_history_matches_its_definition(store: ImageStore) -> None:
    item = _swagger()["paths"]["/images/{name}/history"]["get"]["responses"][200]["schema"]
    jsonschema.Draft4Validator(_schema(item, strict=False)).validate(store.history("app:1"))


def test_summary_matches_image_summary_definition(store: ImageStore) -> None:
    schema = _schema(_swagger()["definitions"]["ImageSummary"])
    for summary in store.summaries():
        jsonschema.Draft4Validator(schema).validate(summary)

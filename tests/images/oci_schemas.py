"""Validate documents against the OCI image-spec v1.1.1 JSON Schemas in shared/specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_DIR = Path(__file__).resolve().parents[3] / "shared" / "specs" / "oci-image-spec-v1.1.1"
if not SPEC_DIR.is_dir():  # CI runs in a clone with shared/ beside it
    SPEC_DIR = Path("/work/shared/specs/oci-image-spec-v1.1.1")

SCHEMA_FILES = {
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "config": "config-schema.json",
    "layout": "image-layout-schema.json",
}


def _retrieve(uri: str) -> Resource[Any]:
    # The schemas' relative $refs resolve against differing base ids; the file
    # name is the stable part.
    name = uri.rsplit("/", 1)[-1]
    return Resource.from_contents(json.loads((SPEC_DIR / name).read_text()), default_specification=DRAFT4)


def validate(kind: str, document: Any) -> None:
    schema = json.loads((SPEC_DIR / SCHEMA_FILES[kind]).read_text())
    registry: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    jsonschema.Draft4Validator(schema, registry=registry).validate(document)

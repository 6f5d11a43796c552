"""Validating documents against the runtime-spec's JSON Schemas (they $ref each other by file name)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema

from tests.specs import SPECS_DIR

SPECS = SPECS_DIR / "oci-runtime-spec-v1.3.0"


def validate(document: Any, schema_name: str) -> None:
    if not (SPECS / schema_name).exists():
        pytest.skip(f"runtime-spec schema {schema_name} not available")
    resources = []
    for path in SPECS.glob("*.json"):
        contents = json.loads(path.read_text())
        resource = referencing.jsonschema.DRAFT4.create_resource(contents)
        resources.append((path.name, resource))
        resources.append((f"file://{path}", resource))
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(resources)
    schema = json.loads((SPECS / schema_name).read_text())
    validator = jsonschema.Draft4Validator(schema, registry=registry)
    validator.validate(document)

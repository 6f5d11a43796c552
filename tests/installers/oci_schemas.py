"""Validators for the OCI image-spec v1.1.1 JSON Schemas kept in ../shared/specs.

The schemas name each other by relative file name (`"$ref": "content-descriptor.json"`)
and resolve those against their own `id`, which sits in two different URL
directories (.../schema/image/config and .../schema/descriptor).  Each file is
therefore registered under both directories.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.specs import SPECS_DIR

SPEC_DIR = Path(os.environ.get("BERTH_OCI_SPEC_DIR", str(SPECS_DIR / "oci-image-spec-v1.1.1")))
_BASES = ("https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/")

SCHEMA_FILES = {
    "config": "config-schema.json",
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "layout": "image-layout-schema.json",
    "descriptor": "content-descriptor.json",
}


def available() -> bool:
    return all((SPEC_DIR / name).is_file() for name in SCHEMA_FILES.values())


@cache
def _registry() -> Registry:  # type: ignore[type-arg]
    resources = []
    for path in sorted(SPEC_DIR.glob("*.json")):
        contents = json.loads(path.read_text())
        resource = Resource.from_contents(contents, default_specification=DRAFT4)
        resources += [(base + path.name, resource) for base in _BASES]
        if "id" in contents:
            resources.append((contents["id"], resource))
    return Registry().with_resources(resources)


def validator(kind: str) -> Draft4Validator:
    schema = json.loads((SPEC_DIR / SCHEMA_FILES[kind]).read_text())
    return Draft4Validator(schema, registry=_registry(), format_checker=Draft4Validator.FORMAT_CHECKER)


def errors(kind: str, document: Any) -> list[str]:
    """Every schema violation of document, as readable strings (empty when valid)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(kind).iter_errors(document)]

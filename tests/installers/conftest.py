"""Fixtures for the seed image tests: two independent forced builds, and the reference dockerd."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from installers.images.build import BuildResult, build_images
from installers.images.recipes import all_recipes
from tests.fixtures import capabilities

# The reference daemon fixture (tests/conftest.py may import it for the whole suite).
from tests.fixtures.dockerd import reference_dockerd  # noqa: F401

SEED_ARCHIVES = {
    "busybox": "busybox:latest",
    "hello-world": "hello-world:latest",
    "debian-bookworm-slim": "debian:bookworm-slim",
}


@dataclass(frozen=True)
class SeedBuilds:
    """The same recipes built twice, forced, into two directories."""

    first: dict[str, BuildResult]
    second: dict[str, BuildResult]

    def archive(self, name: str) -> Path:
        return self.first[name].archive


@pytest.fixture(scope="session")
def seed_builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedBuilds]:
    """Builds every seed image from scratch twice (the second run must not reuse the first)."""
    if not capabilities.root().available:
        pytest.skip(f"[needs_root] {capabilities.root().missing} (mmdebstrap runs in root mode)")
    runs = []
    for label in ("first", "second"):
        out = tmp_path_factory.mktemp(f"seed-images-{label}")
        started = time.monotonic()
        results = build_images(out, all_recipes(), force=True)
        print(f"seed images, {label} forced build: {time.monotonic() - started:.1f} s")
        runs.append({r.name: r for r in results})
    yield SeedBuilds(first=runs[0], second=runs[1])

"""What every seed image recipe provides to the builder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from installers.images.image_config import SeedConfig


@dataclass(frozen=True)
class SeedRootfs:
    """A finished root filesystem and how to describe it as an image."""

    rootfs: Path
    config: SeedConfig
    # Every layer entry's mtime and the image's `created`: taken from the
    # inputs (a package's date), never from the clock, so rebuilds are identical.
    epoch: int
    # Trees assembled by this process as an unprivileged user would otherwise
    # carry that user's uid; None keeps the owners on disk (mmdebstrap sets them).
    owner: tuple[int, int] | None = (0, 0)


class Recipe(Protocol):
    """One seed image: a name, a tag, what its output depends on, how to build its rootfs."""

    @property
    def name(self) -> str:
        """The archive's base name: build/images/<name>.tar."""

    @property
    def repo_tag(self) -> str: ...

    def input_key(self) -> str:
        """A text that changes whenever the inputs (packages, mirror state) change; cheap to compute."""

    def code_files(self) -> list[Path]:
        """Source files whose change must rebuild the image (the recipe module, C sources...)."""

    def build_rootfs(self, workdir: Path) -> SeedRootfs:
        """Builds the root filesystem inside workdir (which the caller removes afterwards)."""

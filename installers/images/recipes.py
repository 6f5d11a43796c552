"""The seed images `make images` builds, in build order."""

from __future__ import annotations

from installers.images.busybox import BusyboxRecipe
from installers.images.debian_slim import DebianSlimRecipe
from installers.images.hello_world import HelloWorldRecipe
from installers.images.recipe import Recipe


def all_recipes() -> list[Recipe]:
    return [BusyboxRecipe(), HelloWorldRecipe(), DebianSlimRecipe()]

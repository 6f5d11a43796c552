"""Container names: Docker's validation rule and readable generated names."""

from __future__ import annotations

import random
import re

from engine.containers.errors import InvalidConfig

VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

# Berth's own word lists (moby's namesgenerator is the model: adjective_surname).
_ADJECTIVES = (
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring", "eager", "fair",
    "fancy", "gentle", "glad", "golden", "happy", "hardy", "keen", "kind", "lively", "lucid", "merry", "mellow",
    "nimble", "noble", "patient", "placid", "plucky", "proud", "quick", "quiet", "rapid", "serene", "sharp",
    "shiny", "snug", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zen",
)
_NAMES = (  # sailors, navigators and harbour people, for a tool called Berth
    "amundsen", "bering", "bougainville", "cabot", "cook", "dampier", "darwin", "drake", "earhart", "ericsson",
    "flinders", "franklin", "gama", "hudson", "humboldt", "kupe", "magellan", "mawson", "nansen", "polo",
    "raleigh", "shackleton", "tasman", "vancouver", "vespucci", "zheng",
)


def validate_name(name: str) -> str:
    """Returns the name without its leading slash; raises InvalidConfig like dockerd."""
    if not VALID_NAME.match(name):
        raise InvalidConfig(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def generate_name(taken: set[str], rng: random.Random | None = None) -> str:
    pick = rng or random.SystemRandom()
    for attempt in range(100):
        name = f"{pick.choice(_ADJECTIVES)}_{pick.choice(_NAMES)}"
        if attempt > 10:
            name += str(pick.randint(0, 99))
        if name not in taken:
            return name
    raise InvalidConfig("could not generate a unique container name")

"""``--name=value`` flags of an instruction, checked like BuildKit's BFlags (instructions/bflag.go)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from engine.build.errors import DockerfileError


class Kind(Enum):
    STRING = "string"
    BOOL = "bool"
    STRINGS = "strings"  # may repeat: RUN --mount, COPY --exclude


@dataclass
class Flags:
    strings: dict[str, list[str]] = field(default_factory=dict)
    bools: dict[str, bool] = field(default_factory=dict)

    def one(self, name: str) -> str | None:
        values = self.strings.get(name)
        return values[-1] if values else None

    def many(self, name: str) -> tuple[str, ...]:
        return tuple(self.strings.get(name, ()))

    def flag(self, name: str, default: bool = False) -> bool:
        return self.bools.get(name, default)


def parse_flags(words: list[str], spec: dict[str, Kind], line: int) -> Flags:
    result = Flags()
    for word in words:
        if not word.startswith("--"):
            raise DockerfileError(f"arg should start with -- : {word}", line)
        if word == "--":
            break
        name, has_value, value = word[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            raise DockerfileError(f"unknown flag: {name}", line)
        seen = name in result.strings or name in result.bools
        if seen and kind is not Kind.STRINGS:
            raise DockerfileError(f"duplicate flag specified: {name}", line)
        if kind is Kind.BOOL:
            if has_value and value == "":
                raise DockerfileError(f"missing a value on flag: {name}", line)
            lowered = value.lower()
            if lowered not in ("", "true", "false"):
                raise DockerfileError(f"expecting boolean value for flag {name}, not: {value}", line)
            result.bools[name] = lowered != "false"
        else:
            if not has_value:
                raise DockerfileError(f"missing a value on flag: {name}", line)
            result.strings.setdefault(name, []).append(value)
    return result

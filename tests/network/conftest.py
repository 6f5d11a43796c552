"""Fixtures of the network tests: every test gets its own "host" netns and never touches the real one.

  host_ns        a fresh netns standing in for the host (lo up), removed after the test
  make_ns        factory of more namespaces (containers), removed after the test
  names          link/netns names carrying the run tag (tests/fixtures/cleanup.py conventions)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from engine.network import netns
from tests.fixtures.cleanup import link_name, resource_name

_counter = itertools.count()


@dataclass(frozen=True)
class Names:
    tag: str
    test: int

    def link(self, suffix: str) -> str:
        # bt<8 hex><test#><suffix>: unique per test, 15 characters at most.
        return link_name(self.tag, f"{self.test % 100}{suffix}")

    def netns(self, suffix: str) -> Path:
        return netns.named_path(resource_name(self.tag, f"{self.test}-{suffix}"))


@pytest.fixture
def names(run_tag: str) -> Names:
    return Names(run_tag, next(_counter))


@pytest.fixture
def make_ns(names: Names) -> Iterator[Callable[[str], str]]:
    made: list[Path] = []

    def make(suffix: str) -> str:
        path = netns.create(names.netns(suffix))
        made.append(path)
        with netns.entered(path), IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        return str(path)

    yield make
    for path in reversed(made):
        netns.remove(path)


@pytest.fixture
def host_ns(make_ns: Callable[[str], str]) -> str:
    return make_ns("host")

"""Fixtures of the network tests: every test gets its own "host" netns and never touches the real one.

  host_ns        a fresh netns standing in for the host (lo up), removed after the test
  make_ns        factory of more namespaces (containers), removed after the test
  names          link/netns names carrying the run tag (tests/fixtures/cleanup.py conventions)
  loop_thread    an asyncio loop on a thread (the daemon's loop); .run(coro) from the test
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyroute2 import IPRoute

from engine.network import netns
from tests.fixtures.cleanup import link_name, resource_name

_counter = itertools.count()
T = TypeVar("T")


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


class LoopThread:
    """An asyncio loop on its own thread, like the daemon's; `run(coro)` waits for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


def veth_between(ns_a: str, ns_b: str, name: str, addr_a: str, addr_b: str) -> None:
    """A plain veth link: `name` in ns_a with addr_a, eth-side `name`+'p' in ns_b with addr_b (CIDR)."""
    fd = os.open(ns_b, os.O_RDONLY)
    try:
        with netns.entered(ns_a), IPRoute() as ipr:
            ipr.link("add", ifname=name, kind="veth", peer={"ifname": name + "p", "net_ns_fd": fd})
            index = ipr.link_lookup(ifname=name)[0]
            ip, prefix = addr_a.split("/")
            ipr.addr("add", index=index, address=ip, prefixlen=int(prefix))
            ipr.link("set", index=index, state="up")
        with netns.entered(ns_b), IPRoute() as ipr:
            index = ipr.link_lookup(ifname=name + "p")[0]
            ip, prefix = addr_b.split("/")
            ipr.addr("add", index=index, address=ip, prefixlen=int(prefix))
            ipr.link("set", index=index, state="up")
    finally:
        os.close(fd)

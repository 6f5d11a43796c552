"""Session-wide test infrastructure shared by every layer's tests.

Fixtures:
  run_tag              this session's ``berthtest-<8 hex>`` (also env BERTH_TEST_TAG)
  cleanup_guard        autouse: sweeps leftovers of dead runs at start, this run's at the end
  test_ca              a session CA (tests/fixtures/tls.py): issue_server(), issue_client()
  registry             docker-registry over plain HTTP on 127.0.0.1:<random port>
  registry_basic_auth  the same behind htpasswd (.username, .password)
  registry_tls         the same over HTTPS signed by test_ca (.ca_cert_path)
  seeded_registry      `registry` holding the seed images pushed by skopeo
  make_registry        factory of fresh registries, stopped when the test ends

Markers needs_root/_dockerd/_registry/_kvm/_display skip with a reason that
says what is missing (tests/fixtures/capabilities.py).  pytest's tmp_path is
under /tmp/<run tag>/ so mounts made there are swept.  Naming conventions for
host resources are in tests/fixtures/cleanup.py."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import capabilities, cleanup
from tests.fixtures.dockerd import reference_dockerd  # noqa: F401  (shared session fixture)
from tests.fixtures.registry import (
    BasicAuth,
    LocalRegistry,
    missing_seed_archives,
    running_registry,
    seed,
)
from tests.fixtures.tls import TestCA

log = logging.getLogger("berth.tests")

_LEASE = pytest.StashKey[cleanup.RunLease]()
_SWEEPS = pytest.StashKey[list[tuple[str, cleanup.SweepReport]]]()
_TIMINGS = pytest.StashKey[dict[str, float]]()
# Fixtures that start a docker-registry: tests using them carry needs_registry implicitly.
_LISTED_REMOVALS = 10
_REGISTRY_FIXTURES = frozenset({"registry", "registry_basic_auth", "registry_tls", "seeded_registry", "make_registry"})


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # tryfirst: the basetemp must be set before pytest's tmp_path factory reads it.
    tag = cleanup.new_run_tag()
    config.stash[_LEASE] = cleanup.RunLease(tag)
    config.stash[_SWEEPS] = []
    config.stash[_TIMINGS] = {}
    os.environ[cleanup.TAG_ENV] = tag
    run_root = cleanup.run_tmp_root(tag)
    run_root.mkdir(mode=0o755, exist_ok=True)
    if config.option.basetemp is None:
        # Mounts made under tmp_path then carry the tag and the guard sweeps them.
        config.option.basetemp = str(run_root / "pytest")


def pytest_unconfigure(config: pytest.Config) -> None:
    lease = config.stash.get(_LEASE, None)
    if lease is None:
        return
    if not any(when == "end" for when, _ in config.stash[_SWEEPS]):
        # No test ran (collection only, usage error): only the run's tmp dir exists.
        own_only = cleanup.SweepPolicy(lease.tag, include_own=True, name_filter=lambda n: lease.tag in n)
        cleanup.sweep_tmp_dirs(own_only, cleanup.SweepReport())
    lease.release()


@pytest.fixture(scope="session")
def run_tag(pytestconfig: pytest.Config) -> str:
    """This session's tag, ``berthtest-<8 hex>``; also in env var BERTH_TEST_TAG."""
    return pytestconfig.stash[_LEASE].tag


@pytest.fixture(scope="session", autouse=True)
def cleanup_guard(run_tag: str, pytestconfig: pytest.Config) -> Iterator[None]:
    """Sweeps leftovers of crashed runs before the first test and this run's after the last."""
    sweeps = pytestconfig.stash[_SWEEPS]
    sweeps.append(("start", cleanup.sweep(cleanup.SweepPolicy(run_tag, include_own=False))))
    cleanup.forget_dead_runs(run_tag)
    yield
    sweeps.append(("end", cleanup.sweep(cleanup.SweepPolicy(run_tag, include_own=True))))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _REGISTRY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_registry)
        for marker in capabilities.MARKER_PROBES:
            if item.get_closest_marker(marker) is None:
                continue
            missing = capabilities.missing_for_marker(marker)
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"[{marker}] {missing}"))
                break


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    sweeps = config.stash.get(_SWEEPS, [])
    timings = config.stash.get(_TIMINGS, {})
    if not sweeps and not timings:
        return
    terminalreporter.section("berth test infrastructure")
    for when, report in sweeps:
        terminalreporter.write_line(f"cleanup {when} sweep: {report.summary()}")
        for kind, name in report.removed[:_LISTED_REMOVALS]:
            terminalreporter.write_line(f"  removed {kind} {name}")
        if len(report.removed) > _LISTED_REMOVALS:
            terminalreporter.write_line(f"  ... and {len(report.removed) - _LISTED_REMOVALS} more (see the log)")
        for kind, name, why in report.errors:
            terminalreporter.write_line(f"  could not remove {kind} {name}: {why}", red=True)
    for what, seconds in timings.items():
        terminalreporter.write_line(f"{what}: {seconds:.3f} s")


def _record_timing(config: pytest.Config, what: str, seconds: float) -> None:
    config.stash[_TIMINGS][what] = seconds


# ---------------------------------------------------------------- registries


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A CA for test servers (registry_tls uses it) and client certificates."""
    return TestCA(tmp_path_factory.mktemp("ca"))


def _skip_unless_registry() -> None:
    capability = capabilities.registry()
    if not capability.available:
        pytest.skip(f"[needs_registry] {capability.missing}")


def _timed_registry(config: pytest.Config, name: str, workdir: Path, **options: object) -> Iterator[LocalRegistry]:
    _skip_unless_registry()
    started = time.monotonic()
    with running_registry(workdir, **options) as started_registry:  # type: ignore[arg-type]
        _record_timing(config, f"{name} start", time.monotonic() - started)
        yield started_registry


@pytest.fixture(scope="session")
def registry(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A plain-HTTP docker-registry on 127.0.0.1:<random port>, shared by the session:
    it holds the seed images once seeded_registry ran; use make_registry for an empty one."""
    yield from _timed_registry(pytestconfig, "registry", tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="session")
def registry_basic_auth(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRegistry]:
    """A registry behind htpasswd basic auth; `.username` / `.password` log in."""
    capability = capabilities.htpasswd()
    if not capability.available:
        pytest.skip(capability.missing)
    auth = BasicAuth("berthtest-user", cleanup.tag_hex(cleanup.current_tag()) + "-secret")
    yield from _timed_registry(pytestconfig, "registry_basic_auth", tmp_path_factory.mktemp("registry-auth"), auth=auth)


@pytest.fixture(scope="session")
def registry_tls(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA
) -> Iterator[LocalRegistry]:
    """A registry serving HTTPS with a certificate of `test_ca`; `.ca_cert_path` verifies it."""
    server = test_ca.issue_server("registry")
    yield from _timed_registry(
        pytestconfig,
        "registry_tls",
        tmp_path_factory.mktemp("registry-tls"),
        tls=server,
        ca_cert_path=test_ca.cert_path,
    )


@pytest.fixture
def make_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalRegistry]]:
    """A factory of fresh, empty registries for tests that need their own:
    ``make_registry(auth=BasicAuth(...), tls=test_ca.issue_server("r"), ca_cert_path=test_ca.cert_path)``.
    Each is stopped when the test ends."""
    _skip_unless_registry()
    started: list[LocalRegistry] = []

    def make(**options: Any) -> LocalRegistry:
        new = LocalRegistry(tmp_path_factory.mktemp("registry"), **options)
        started.append(new)
        new.start()
        return new

    yield make
    for each in started:
        each.stop()


@pytest.fixture(scope="session")
def seeded_registry(pytestconfig: pytest.Config, registry: LocalRegistry) -> LocalRegistry:
    """`registry` holding library/busybox:latest, library/hello-world:latest and
    library/debian:bookworm-slim, pushed by skopeo from build/images/."""
    missing = missing_seed_archives()
    if missing:
        pytest.skip(
            f"seed image archives not built ({', '.join(str(p) for p in missing)}): "
            "run `make images` (.venv/bin/python -m installers.images build --out build/images)"
        )
    capability = capabilities.skopeo()
    if not capability.available:
        pytest.skip(capability.missing)
    started = time.monotonic()
    seed(registry)
    _record_timing(pytestconfig, "seed push (3 images, skopeo)", time.monotonic() - started)
    return registry

"""`berth run` of an image the engine lacks: "Unable to find image", the engine pulls, the container runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.conftest import Tools, running_tools
from tests.fixtures.registry import LocalRegistry

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_registry]


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory, run_tag: str) -> Iterator[Tools]:
    """The registry listens on the host's loopback: this berthd runs in the host's netns (no bridge, no rules)."""
    with running_tools(tmp_path_factory.mktemp("cli-pull"), run_tag, host_netns=True) as tools:
        yield tools


def test_run_pulls_a_missing_image_then_runs_it(tools: Tools, seeded_registry: LocalRegistry) -> None:
    image = f"{seeded_registry.host}/library/busybox"
    out = tools.berth("run", "--rm", image, "echo", "pulled")
    assert (out.returncode, out.stdout) == (0, "pulled\n"), out.stderr
    assert out.stderr.splitlines()[0] == f"Unable to find image '{image}:latest' locally"
    assert f"Status: Downloaded newer image for {image}:latest" in out.stderr
    assert tools.ok("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").split() == [f"{image}:latest"]
    again = tools.berth("run", "--rm", image, "echo", "cached")
    assert (again.returncode, again.stdout) == (0, "cached\n")
    assert "Unable to find image" not in again.stderr

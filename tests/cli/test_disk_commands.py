"""`system df`, `system prune`, `container prune`, `image prune`: berth and the real docker CLI against one
berthd.  df must print the same; a prune is run by each tool on the same made-up state and the reports
must read alike (ids differ: they are replaced by placeholders before comparing)."""

from __future__ import annotations

import re

import pytest

from tests.cli.conftest import BERTH, Tools

pytestmark = pytest.mark.needs_root

_IDS = re.compile(r"(sha256:)?[0-9a-f]{64}")


def _normalized(text: str) -> list[str]:
    """Report lines with ids as <id>, sorted within each section (the engine's order is its own)."""
    sections, current = [], []  # type: ignore[var-annotated]
    for line in _IDS.sub("<id>", text).split("\n"):
        if line.endswith(":") or not line:
            sections.append(sorted(current))
            current = []
            sections.append([line])
        else:
            current.append(line)
    sections.append(sorted(current))
    return [line for section in sections for line in section]


def _leftovers(tools: Tools, tag: str) -> None:
    """Two exited containers, an unused network and a dangling image (an image tag committed twice)."""
    for n in (1, 2):
        tools.ok("docker", "run", "--network", "none", "--name", f"{tag}-c{n}", "busybox", "true")
    tools.ok("docker", "network", "create", f"{tag}-net")
    for n in (1, 2):
        tools.ok("docker", "commit", "-c", f"LABEL n={n}", f"{tag}-c1", f"{tag}-img:v")


def test_system_df_agrees_with_docker(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "--network", "none", "--name", "df-c", "-v", "df-vol:/data", busybox, "sh", "-c",
             "head -c 12345 /dev/zero > /data/f; head -c 5000 /dev/zero > /f")
    for args in ([], ["--format", "json"], ["--format", "{{.Type}}: {{.Active}}/{{.TotalCount}} {{.Reclaimable}}"],
                 ["--format", "table {{.Type}}\t{{.Size}}"], ["-v"], ["--verbose"]):
        ours, theirs = tools.berth("system", "df", *args), tools.docker("system", "df", *args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
    tools.ok("docker", "rm", "df-c")
    tools.ok("docker", "volume", "rm", "df-vol")


@pytest.mark.parametrize("args", [["system", "prune"], ["system", "prune", "-a", "--volumes"], ["image", "prune"],
                                  ["image", "prune", "-a"], ["container", "prune"]], ids=" ".join)
def test_prune_asks_like_docker_and_no_keeps_everything(tools: Tools, busybox: str, args: list[str]) -> None:
    before = tools.ok("docker", "ps", "-aq")
    ours, theirs = tools.berth(*args, stdin="n\n"), tools.docker(*args, stdin="n\n")
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert tools.ok("docker", "ps", "-aq") == before


@pytest.mark.parametrize("args", [["container", "prune", "-f"], ["image", "prune", "-f"],
                                  ["system", "prune", "-f"]], ids=" ".join)
def test_prune_reports_like_docker(tools: Tools, busybox: str, args: list[str]) -> None:
    reports = []
    for tool in ("berth", "docker"):
        _leftovers(tools, f"pr-{tool}")
        done = tools.run(BERTH if tool == "berth" else tool, *args)
        assert done.returncode == 0, done.stderr
        reports.append(done.stdout.replace(f"pr-{tool}-", "pr-TOOL-"))
        tools.ok("docker", "rm", "-f", f"pr-{tool}-c1", f"pr-{tool}-c2")
        tools.docker("network", "rm", f"pr-{tool}-net")
        tools.docker("rmi", f"pr-{tool}-img:v")
        tools.ok("docker", "image", "prune", "-f")  # the next tool's state starts as this one's did
    assert _normalized(reports[0]) == _normalized(reports[1])
    assert reports[0].splitlines()[-1].startswith("Total reclaimed space: ")
    assert ("Deleted Containers:" in reports[0]) == (args[0] != "image")

"""`berth volume ...` and the real `docker volume ...` against one berthd: same objects, same output."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Tools

pytestmark = pytest.mark.needs_root


def _both(tools: Tools, *args: str) -> str:
    """Run the command with both tools; they must agree on status, stdout and stderr. Returns stdout."""
    ours, theirs = tools.berth(*args), tools.docker(*args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
    return ours.stdout


def test_created_volumes_are_listed_alike(tools: Tools) -> None:
    assert tools.ok("berth", "volume", "create", "--label", "team=a", "-o", "type=tmpfs", "-o", "device=tmpfs",
                    "vol-b") == "vol-b\n"
    assert tools.ok("docker", "volume", "create", "--label", "team=b", "vol-d") == "vol-d\n"
    listed = _both(tools, "volume", "ls")
    assert listed.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert {"vol-b", "vol-d"} <= {line.split()[-1] for line in listed.splitlines()[1:]}
    assert set(_both(tools, "volume", "ls", "-q").split()) >= {"vol-b", "vol-d"}
    assert _both(tools, "volume", "ls", "-q", "--filter", "label=team=a") == "vol-b\n"
    for fmt in ("{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Mountpoint}}", '{{.Name}}={{.Label "team"}}',
                "table {{.Name}}\t{{.Labels}}", "json"):
        _both(tools, "volume", "ls", "--filter", "label=team", "--format", fmt)


def test_inspect_agrees_and_anonymous_create_names_a_volume(tools: Tools) -> None:
    tools.ok("berth", "volume", "create", "--label", "k=v", "vol-i")
    inspected = json.loads(_both(tools, "volume", "inspect", "vol-i"))
    assert inspected[0]["Name"] == "vol-i" and inspected[0]["Labels"] == {"k": "v"}
    _both(tools, "volume", "inspect", "-f", "{{.Name}} {{json .Labels}} {{.Driver}}", "vol-i")
    _both(tools, "volume", "inspect", "vol-i", "no-such-volume")
    anonymous = tools.ok("berth", "volume", "create").strip()
    assert len(anonymous) == 64 and tools.ok("docker", "volume", "inspect", "-f", "{{.Name}}", anonymous).strip()
    tools.ok("berth", "volume", "rm", anonymous)


def test_rm_and_prune_agree(tools: Tools, busybox: str) -> None:
    tools.ok("berth", "volume", "create", "vol-rm")
    assert tools.ok("berth", "volume", "rm", "vol-rm") == "vol-rm\n"
    _both(tools, "volume", "rm", "vol-rm")  # now missing for both: same error, same status
    tools.ok("docker", "run", "--name", "uses-vol", "-v", "vol-used:/data", busybox, "true")
    in_use = tools.berth("volume", "rm", "vol-used")
    assert in_use.returncode == 1 and in_use.stderr.startswith("Error response from daemon: ")
    tools.ok("berth", "volume", "create", "vol-prune-named")
    anonymous = tools.ok("docker", "volume", "create", "--label", "com.docker.volume.anonymous=").strip()
    pruned = tools.berth("volume", "prune", "-f")
    assert pruned.returncode == 0 and pruned.stdout.startswith("Deleted Volumes:\n" + anonymous + "\n")
    assert pruned.stdout.endswith("\nTotal reclaimed space: 0B\n")
    assert "vol-prune-named" in tools.ok("docker", "volume", "ls", "-q")
    everything = tools.berth("volume", "prune", "-a", "-f").stdout
    assert "vol-prune-named\n" in everything and "vol-used" not in everything
    assert _both(tools, "volume", "prune", "-f") == "Total reclaimed space: 0B\n"


def test_prune_asks_first(tools: Tools) -> None:
    tools.ok("berth", "volume", "create", "vol-kept")
    answer = tools.berth("volume", "prune", "-a", stdin="n\n")
    assert answer.returncode == 0
    assert answer.stdout.startswith("WARNING! This will remove all local volumes not used by at least one "
                                    "container.\nAre you sure you want to continue? [y/N] ")
    assert "vol-kept" in tools.ok("docker", "volume", "ls", "-q")


def test_usage_errors_are_docker_lines(tools: Tools) -> None:
    out = tools.berth("volume", "inspect")
    assert out.returncode == 1 and "'berth volume inspect' requires at least 1 argument" in out.stderr
    out = tools.berth("volume", "ls", "--bogus")
    assert out.returncode == 125 and out.stderr.startswith("berth: unknown flag: --bogus")
    out = tools.berth("volume", "lss")
    assert out.returncode == 125 and "Did you mean 'ls'?" in out.stderr


def test_plain_inspect_finds_volumes_and_networks_like_docker(tools: Tools) -> None:
    tools.ok("berth", "volume", "create", "vol-plain")
    for args in (["inspect", "-f", "{{.Name}} {{.Driver}}", "vol-plain"], ["inspect", "--type", "volume", "vol-plain"],
                 ["inspect", "-f", "{{.Name}}", "bridge"], ["inspect", "nothing-by-this-name"]):
        _both(tools, *args)

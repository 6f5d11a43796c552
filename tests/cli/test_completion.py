"""`berth completion`: scripts generated from the command tables, exercised in a real bash."""

from __future__ import annotations

import subprocess

import pytest

from engine.cli.main import COMMANDS, GROUPS
from tests.cli.conftest import BERTH, Tools

pytestmark = pytest.mark.needs_root


def _complete(tools: Tools, words: list[str]) -> list[str]:
    """Run bash's completion function for `words` (the last one being typed) and return its candidates."""
    script = tools.ok("berth", "completion", "bash")
    quoted = " ".join(f"'{w}'" for w in words)
    driver = f"""{script}
COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _berth; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = dict(tools.daemon.env(), PATH=f"{BERTH.rsplit('/', 1)[0]}:/usr/bin:/bin")
    out = subprocess.run(["bash", "--norc", "-c", driver], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_bash_completes_commands_from_the_table(tools: Tools) -> None:
    assert _complete(tools, ["berth", ""]) == sorted([*COMMANDS, *GROUPS])
    assert _complete(tools, ["berth", "im"]) == ["image", "images", "import"]
    assert _complete(tools, ["berth", "image", ""]) == sorted(GROUPS["image"])


def test_bash_completes_container_and_image_names_from_the_engine(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "create", "--name", "completable", busybox, "true")
    assert "completable" in _complete(tools, ["berth", "rm", "comp"])
    assert "completable" in _complete(tools, ["berth", "container", "start", ""])
    assert "busybox:latest" in _complete(tools, ["berth", "rmi", "bus"])
    assert "busybox:latest" in _complete(tools, ["berth", "image", "inspect", "bus"])


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_name_every_command(tools: Tools, shell: str) -> None:
    script = tools.ok("berth", "completion", shell)
    for name in [*COMMANDS, *GROUPS]:
        assert name in script


def test_bash_completes_volume_network_and_context_names(tools: Tools) -> None:
    tools.ok("berth", "volume", "create", "completable-vol")
    tools.ok("berth", "network", "create", "completable-net")
    try:
        assert _complete(tools, ["berth", "volume", "rm", "completable"]) == ["completable-vol"]
        assert "completable-net" in _complete(tools, ["berth", "network", "connect", "comp"])
        assert "default" in _complete(tools, ["berth", "context", "use", ""])
        assert _complete(tools, ["berth", "exec", ""]) == _complete(tools, ["berth", "logs", ""])
    finally:
        tools.ok("berth", "network", "rm", "completable-net")
        tools.ok("berth", "volume", "rm", "completable-vol")

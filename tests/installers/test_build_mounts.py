"""installers/images/mounts.py: a build directory is never deleted through a mount inside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures import capabilities

# Runs in a private mount namespace: the tmpfs it mounts is never visible on the host.
_SCRIPT = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path
    from installers.images.mounts import mounts_under, remove_tree

    root = Path(sys.argv[1])
    inner = root / "rootfs" / "with space" / "proc"
    inner.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "berthtest-tmpfs", str(inner)], check=True)
    (inner / "precious").write_text("must not be deleted through the mount")
    assert mounts_under(root) == [inner], mounts_under(root)
    remove_tree(root)
    assert not root.exists()
    assert mounts_under(root) == []
    print("ok")
    """
)


def test_remove_tree_detaches_mounts_before_deleting(tmp_path: Path) -> None:
    if not capabilities.root().available:
        pytest.skip(capabilities.root().missing)
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    result = subprocess.run(
        [unshare, "--mount", "--propagation", "private", sys.executable, "-c", _SCRIPT, str(tmp_path / "build")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

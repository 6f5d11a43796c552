"""installers/launchers.py: the python -IS launchers `make venv` puts in place of pip's wrappers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from installers.launchers import site_paths, write_launchers


def test_launchers_run_the_entry_points_whatever_the_python_environment(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    written = write_launchers(str(bin_dir), sys.executable)
    assert sorted(os.path.basename(p) for p in written) == ["berth", "berth-runtime"]
    # A package that would shadow Berth's if PYTHONPATH were honoured: -I ignores it.
    shadow = tmp_path / "shadow" / "engine"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise SystemExit('shadowed by PYTHONPATH')\n")
    env = dict(os.environ, PYTHONPATH=str(shadow.parent))
    runtime = subprocess.run([str(bin_dir / "berth-runtime"), "--version"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=60)
    assert runtime.returncode == 0, runtime.stderr
    assert runtime.stdout.startswith("berth-runtime version ")
    cli = subprocess.run([str(bin_dir / "berth"), "--help"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert "Usage:" in cli.stdout


def test_site_paths_are_what_site_adds() -> None:
    extra = site_paths(sys.executable)
    import engine

    checkout = str(Path(engine.__file__).resolve().parents[1])
    assert checkout in extra or any(Path(p).resolve() == Path(checkout) for p in extra)
    assert all(p in sys.path for p in extra)

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


def test_the_runtime_launcher_collects_cycles_only_in_long_lived_verbs(tmp_path: Path) -> None:
    """berth-runtime starts with the cyclic collector off (a plain lifecycle call lives ~20 ms); any other
    verb turns it back on.  The probe is the launcher's own text, saying at exit whether the collector runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_launchers(str(bin_dir), sys.executable)
    text = (bin_dir / "berth-runtime").read_text()
    assert "gc.disable()" in text
    assert "gc.disable()" not in (bin_dir / "berth").read_text()
    probe = text.replace("sys.exit(main())", "import atexit\n"
                         "atexit.register(lambda: print('collector on' if gc.isenabled() else 'collector off'))\n"
                         "sys.exit(main())")
    (bin_dir / "probe").write_text(probe)
    root = str(tmp_path / "state")

    def collector_after(*args: str) -> str:
        out = subprocess.run([sys.executable, "-IS", str(bin_dir / "probe"), "--root", root, *args],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip().splitlines()[-1]

    assert collector_after("state", "nosuch") == "collector off"  # a plain lifecycle call
    assert collector_after("list") == "collector on"  # through argparse: any verb may live long

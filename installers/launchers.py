"""Fast launchers for `berth` and `berth-runtime`, replacing pip's console-script wrappers.

pip's wrapper runs ``#!<venv>/bin/python`` then imports the entry module: the
interpreter imports `site` (venv .pth files, ~2 ms here), honours PYTHON*
variables, and under PYTHONDONTWRITEBYTECODE recompiles every module of an
editable tree on every call (~35 ms for `berth-runtime run`).  These launchers
run ``python -IS`` instead:

- ``-I`` (isolated): PYTHONPATH, PYTHONDONTWRITEBYTECODE, the user's site dir
  and the current directory do not change which code runs — a runtime runs as
  root, like runc's static binary — and byte-code is cached next to the source;
- ``-S``: no `site` import; the directories `site` would add (the venv's
  site-packages and the editable checkout from its .pth) are measured once,
  here, and written into the launcher.

`make venv` runs this after `pip install -e`; rerun it after reinstalling.
Run: .venv/bin/python -m installers.launchers [--bin DIR]
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys

# launcher name -> (module, function); the same targets as [project.scripts] in pyproject.toml.
LAUNCHERS = {
    "berth": ("engine.cli.fast", "main"),  # ps/images fast path, else engine.cli.main
    "berth-runtime": ("engine.runtime.cli", "main"),
}

# Launchers that start with the cyclic collector off: a runc-like call lives ~20 ms, and collections
# triggered by its imports and JSON cost ~1 ms of that.  The entry point turns it back on for anything
# long-lived (engine.runtime.cli: every verb but the plain lifecycle calls).
GC_OFF_AT_START = {"berth-runtime"}

_PRINT_PATH = "import sys; print(repr(sys.path))"


def site_paths(python: str) -> list[str]:
    """What `site` adds to sys.path for ``python`` in isolated mode, in order."""
    def path_of(*flags: str) -> list[str]:
        out = subprocess.run([python, *flags, "-c", _PRINT_PATH], capture_output=True, text=True, check=True,
                             cwd="/", timeout=60).stdout
        value = ast.literal_eval(out.strip())
        assert isinstance(value, list)
        return [str(p) for p in value]

    bare = path_of("-I", "-S")
    return [p for p in path_of("-I") if p not in bare]


def launcher_text(python: str, module: str, function: str, extra_paths: list[str], gc_off: bool = False) -> str:
    return (
        f"#!{python} -IS\n"
        "# Written by installers/launchers.py (make venv): python -I -S, the paths site would add listed here.\n"
        + ("import gc\ngc.disable()  # see GC_OFF_AT_START in installers/launchers.py\n" if gc_off else "")
        + "import sys\n"
        f"sys.path.extend({extra_paths!r})\n"
        f"from {module} import {function}\n"
        f"sys.exit({function}())\n"
    )


def write_launchers(bin_dir: str, python: str) -> list[str]:
    extra = site_paths(python)
    written = []
    for name, (module, function) in LAUNCHERS.items():
        path = os.path.join(bin_dir, name)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(launcher_text(python, module, function, extra, gc_off=name in GC_OFF_AT_START))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.dirname(sys.executable), help="where the scripts go (the venv's bin)")
    opts = parser.parse_args()
    python = os.path.join(opts.bin, "python")
    if not os.access(python, os.X_OK):
        python = sys.executable
    for path in write_launchers(opts.bin, python):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

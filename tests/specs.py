"""Where the shared specifications are: `../shared/specs` beside the checkout.

CI runs a fresh clone "with a copy of shared/ beside it"; developers have
/work/main next to /work/shared.  BERTH_SPECS_DIR overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def specs_dir() -> Path:
    override = os.environ.get("BERTH_SPECS_DIR")
    candidates = [Path(override)] if override else []
    candidates += [REPO.parent / "shared" / "specs", Path("/work/shared/specs")]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


SPECS_DIR = specs_dir()

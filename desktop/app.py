"""`berth-desktop`: the desktop app's entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("berth-desktop: the desktop app is not built yet (it comes after the engine)", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())

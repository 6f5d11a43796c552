"""`berthd`: the engine daemon's entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    # The daemon is issue #5.  Until it exists, say so plainly instead of
    # pretending to serve: `make run` reads this exit status and stops there.
    print("berthd: the engine daemon is not built yet (tracked in issue #5)", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())

"""`berth`: the command-line client's entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    # The CLI is issue #8 and needs the daemon (issue #5); no fake output meanwhile.
    print("berth: the CLI is not built yet (tracked in issue #8)", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())

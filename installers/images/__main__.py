"""`python -m installers.images build --out build/images [--force] [--only NAME]` (what `make images` runs)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from installers.images.build import build_images
from installers.images.errors import SeedImageError
from installers.images.recipes import all_recipes


def main(argv: list[str] | None = None) -> int:
    recipes = all_recipes()
    names = [r.name for r in recipes]
    parser = argparse.ArgumentParser(prog="python -m installers.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the seed image archives (cached by input hash)")
    build.add_argument("--out", type=Path, default=Path("build/images"), help="output directory")
    build.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    build.add_argument("--only", action="append", choices=names, help="build only this image (repeatable)")
    build.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    chosen = [r for r in recipes if not args.only or r.name in args.only]
    failed = 0
    # One image failing (no root for mmdebstrap, mirror down) must not stop the others.
    for recipe in chosen:
        try:
            (result,) = build_images(args.out, [recipe], force=args.force)
        except SeedImageError as e:
            print(f"{recipe.name}: FAILED: {e}", file=sys.stderr)
            failed += 1
            continue
        if result.rebuilt:
            print(
                f"{result.name}: built {result.archive} "
                f"({result.size / 1e6:.1f} MB, {result.digest[:19]}) in {result.seconds:.1f} s"
            )
        else:
            print(f"{result.name}: up to date" + (f" ({result.note})" if result.note else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

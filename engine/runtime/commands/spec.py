"""`spec` (write a default config.json) and `features`."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import InvalidSpec
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("spec", help="create a new specification file")
    p.add_argument("-b", "--bundle", default=".", help="path to the root of the bundle directory")
    p.add_argument("--rootless", action="store_true", help="generate a configuration for a rootless container")
    p.set_defaults(handler=spec_command)
    p = sub.add_parser("features", help="show the enabled features")
    p.set_defaults(handler=features_command)


def spec_command(args: argparse.Namespace, _store: StateStore) -> int:
    from ..default_spec import default_spec

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise InvalidSpec("File config.json exists. Remove it first")  # runc's message
    with open(path, "w", encoding="utf-8") as f:
        json.dump(default_spec(rootless=args.rootless), f, indent="\t")
    return 0


def features_command(_args: argparse.Namespace, _store: StateStore) -> int:
    from ..features import features

    print(json.dumps(features(), indent="    "))
    return 0

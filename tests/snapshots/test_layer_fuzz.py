"""Random hostile layers (fixed seeds, so reproducible): whatever the mix of symlinks, hardlinks,
whiteouts and `..`, apply_layer either succeeds or raises LayerError, and nothing outside the
target changes (the sentinel fixture checks the sibling dir and the host's /etc)."""

from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import pytest

from engine.snapshots.errors import LayerError
from engine.snapshots.layer_apply import WhiteoutMode, apply_layer
from tests.snapshots.helpers import TarBuilder

pytestmark = pytest.mark.needs_root

NAMES = ["a", "b", "etc", "passwd", ".wh.a", ".wh.b", ".wh..wh..opq", "sentinel", "secret"]


def component(rng: random.Random) -> str:
    # ".." and "." are rare: a name that climbs out ends the layer at once, which tests little else.
    r = rng.random()
    return ".." if r < 0.03 else "." if r < 0.06 else rng.choice(NAMES)


def random_layer(rng: random.Random, sentinel: Path) -> TarBuilder:
    link_targets = [
        "/", "/etc", "/etc/passwd", "..", "../..", "../sentinel", str(sentinel), str(sentinel / "secret"),
        "a", "a/b", "/proc/self/root", "etc/passwd", "b/../..",
    ]
    tb = TarBuilder()
    for _ in range(rng.randint(1, 12)):
        name = "/".join(component(rng) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.2:
            name = "/" + name
        kind = rng.choice(["file", "dir", "symlink", "hardlink", "fifo"])
        if kind == "file":
            tb.file(name, b"pwned\n", mode=rng.choice([0o644, 0o4755, 0o777]))
        elif kind == "dir":
            tb.dir(name, mode=rng.choice([0o755, 0o1777, 0o700]))
        elif kind == "symlink":
            tb.symlink(name, rng.choice(link_targets))
        elif kind == "hardlink":
            tb.hardlink(name, rng.choice([*link_targets, "a", "b/passwd"]))
        else:
            tb.device(name, tarfile.FIFOTYPE, 0, 0)
    return tb


@pytest.mark.parametrize("mode", list(WhiteoutMode))
@pytest.mark.parametrize("seed", range(200))
def test_random_hostile_layer_never_escapes(work: Path, sentinel: Path, seed: int, mode: WhiteoutMode) -> None:
    rng = random.Random(seed)
    target = work / "target"
    if mode is WhiteoutMode.DELETE:
        # In place, on top of a "parent" tree that the layer may delete from or write through.
        (target / "etc").mkdir(parents=True)
        (target / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
        os.symlink("/etc", target / "a")
        (target / "b").mkdir()
    tb = random_layer(rng, sentinel)
    try:
        apply_layer(target, io.BytesIO(tb.build()), durable=False, whiteout_mode=mode)
    except LayerError:
        if mode is WhiteoutMode.OVERLAY:
            assert not target.exists() or list(target.iterdir()) == []
    # Whatever happened, only the target (and nothing else) may exist beside the sentinel.
    assert sorted(os.listdir(work)) in (["sentinel"], ["sentinel", "target"])

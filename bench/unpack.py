"""Layer unpack throughput: Berth's safe layer apply vs GNU tar, side by side, in MB/s.

The layer is the largest one of the debian:bookworm-slim seed image (``make images``), as an
uncompressed tar, so both sides do the same work: read a tar, create files, set owners,
modes, times and xattrs.  Berth's apply also resolves every path inside the root (the
safe-extraction rules of issue #4) and syncs the filesystem before its rename (``durable``);
the second Berth row leaves the sync out, which is what ``tar`` does.

    .venv/bin/python -m bench.unpack [--runs 5] [--layer path/to/layer.tar]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from engine.snapshots.layer_apply import apply_layer
from tests.fixtures.registry import seed_images_dir


def largest_seed_layer(workdir: Path) -> Path:
    """Copy the debian seed image's largest layer out of its archive, uncompressed."""
    archive = seed_images_dir() / "debian-bookworm-slim.tar"
    if not archive.is_file():
        raise SystemExit(f"{archive} is missing: run `make images` first")
    raw = workdir / "layer.raw"
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        biggest = max((outer.getmember(name) for name in manifest[0]["Layers"]), key=lambda m: m.size)
        src = outer.extractfile(biggest)
        assert src is not None
        with open(raw, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    with open(raw, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    if not compressed:
        return raw
    out = workdir / "layer.tar"
    with gzip.open(raw) as plain, open(out, "wb") as dst:
        shutil.copyfileobj(plain, dst, 1 << 20)
    raw.unlink()
    return out


def time_berth(layer: Path, target: Path, durable: bool) -> float:
    start = time.perf_counter()
    with open(layer, "rb") as f:
        apply_layer(target, f, durable=durable)
    elapsed = time.perf_counter() - start
    shutil.rmtree(target)
    return elapsed


def time_tar(layer: Path, target: Path) -> float:
    target.mkdir()
    start = time.perf_counter()
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-xpf", str(layer), "-C", str(target)], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(target)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layer", type=Path, help="an uncompressed layer tar (default: the debian seed's largest)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-unpack-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        layer = args.layer or largest_seed_layer(work)
        size_mb = layer.stat().st_size / 1e6
        runners = {
            "berth apply_layer (durable)": lambda: time_berth(layer, work / "o", durable=True),
            "berth apply_layer (no sync)": lambda: time_berth(layer, work / "o", durable=False),
            "GNU tar -xpf": lambda: time_tar(layer, work / "t"),
        }
        labels = list(runners)
        rows: dict[str, list[float]] = {label: [] for label in labels}
        for i in range(args.runs):  # interleaved and rotated: load drift and write-back of the last
            for label in labels[i % 3:] + labels[:i % 3]:  # removal hit every row alike
                rows[label].append(runners[label]())
        tar_median = statistics.median(rows["GNU tar -xpf"])
        print(f"layer: {layer.name}, {size_mb:.1f} MB uncompressed; median of {args.runs}")
        print(f"{'':30} {'median':>9} {'MB/s':>8} {'vs tar':>7}")
        for label, seconds in rows.items():
            median = statistics.median(seconds)
            print(f"{label:30} {median * 1000:7.0f}ms {size_mb / median:8.1f} {median / tar_median:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

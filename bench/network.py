"""Networking costs in berthd: what a bridge adds to `docker run`, and TCP throughput through a published port.

- `docker run --rm busybox true` on the default bridge vs `--network none`, taking turns
  (netns + veth + address + rules + /etc files, and their removal, are the difference);
- a 256 MiB download from a busybox httpd published with `-p`, read by curl in berthd's
  netns: from 127.0.0.1 (served by the userland proxy) and from the bridge gateway's
  address (the kernel's DNAT, no process copying bytes).

berthd runs in its own run-tagged network namespace (tests/api/conftest.py), so nothing
here touches the host's network.  dockerd is not compared: the reference dockerd
(tests/fixtures/dockerd.py) runs with `--bridge=none --iptables=false` in the host's
netns, which has no published-port path to measure.

Run: .venv/bin/python -m bench.network [--runs 20] [--mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.engines import Engine, bench_run_tag, berthd_engine
from bench.timing import report, time_interleaved
from tests.api.conftest import daemon_netns


def bench_run_overhead(engine: Engine, runs: int) -> None:
    calls = {
        "--network none": lambda: engine.docker_quiet("run", "--rm", "--network", "none", "busybox", "true"),
        "bridge": lambda: engine.docker_quiet("run", "--rm", "busybox", "true"),
    }
    samples = time_interleaved(calls, runs, warmup=3)
    print(report(f"docker run --rm busybox true ({runs} runs each, taking turns)", samples, "--network none"))
    none, bridge = (s.median for s in samples)
    print(f"networking adds {1000 * (bridge - none):.1f} ms to a run (medians)\n", flush=True)


def _download(netns: str, url: str) -> float:
    """Bytes per second of one curl download inside `netns`."""
    out = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "curl", "-sS", "-o", "/dev/null", "-w",
                          "%{speed_download}", "--max-time", "120", url], capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"curl {url}: {out.stderr.strip()}")
    return float(out.stdout)


def bench_throughput(engine: Engine, netns: str, mib: int, repeat: int) -> None:
    engine.docker("run", "-d", "--name", "bench-web", "--tmpfs", "/www", "-p", "18555:80", "busybox", "sh", "-c",
                  f"dd if=/dev/zero of=/www/blob bs=1M count={mib} 2>/dev/null && exec httpd -f -h /www")
    try:
        info = json.loads(engine.docker("inspect", "bench-web").stdout)[0]
        gateway = info["NetworkSettings"]["Gateway"]
        paths = {"userland proxy (127.0.0.1)": "http://127.0.0.1:18555/blob",
                 f"kernel DNAT ({gateway})": f"http://{gateway}:18555/blob",
                 "direct to the container": f"http://{info['NetworkSettings']['IPAddress']}/blob"}
        for _ in range(600):  # httpd starts after dd: wait until it answers
            probe = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "curl", "-s", "-o", "/dev/null", "-r",
                                    "0-0", paths["direct to the container"]], capture_output=True, timeout=30)
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        print(f"TCP download of {mib} MiB through a published port ({repeat} runs each, median)")
        for label, url in paths.items():
            speeds = [_download(netns, url) for _ in range(repeat)]
            print(f"  {label:<36} {statistics.median(speeds) / 2**20:8.0f} MiB/s")
        print(flush=True)
    finally:
        engine.docker("rm", "-f", "bench-web", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-net-") as tmp, bench_run_tag() as tag:
        root = Path(tmp) / "berthd"
        with berthd_engine(root, tag) as engine:
            netns = daemon_netns(root)
            bench_run_overhead(engine, args.runs)
            bench_throughput(engine, netns, args.mib, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())

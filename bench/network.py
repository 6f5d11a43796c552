"""Networking costs in berthd: what a bridge adds to `docker run`, and TCP throughput through a published port.

- `docker run --rm busybox true` on the default bridge vs `--network none`, taking turns
  (netns + veth + address + rules + /etc files, and their removal, are the difference);
- a 256 MiB download from a busybox httpd published with `-p`, read by curl in berthd's
  netns: from 127.0.0.1 (served by the userland proxy) and from the bridge gateway's
  address (the kernel's DNAT, no process copying bytes).

berthd and Debian's dockerd (tests/fixtures/dockerd.py, here with its default networking:
docker0, iptables, docker-proxy) each run in their own run-tagged network namespace, so
nothing here touches the host's network; calls take turns between them.

Run: .venv/bin/python -m bench.network [--runs 20] [--mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.engines import BUSYBOX_ARCHIVE, Engine, bench_run_tag, berthd_engine
from bench.timing import report, time_interleaved
from tests.api.conftest import daemon_netns, remove_netns
from tests.fixtures.cleanup import resource_name
from tests.fixtures.dockerd import running_dockerd


@contextlib.contextmanager
def dockerd_in_netns(workdir: Path, tag: str) -> Iterator[tuple[Engine, str]]:
    name = resource_name(tag, "ndockerd")
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=30)
        with running_dockerd(workdir, f"/run/netns/{name}") as daemon:
            engine = Engine("dockerd", daemon.env(), daemon.pid, workdir)
            try:
                engine.docker("load", "-i", str(BUSYBOX_ARCHIVE))
                yield engine, name
            finally:
                engine.remove_all_containers()
    finally:
        remove_netns(name)


def bench_run_overhead(engines: dict[str, Engine], runs: int) -> None:
    calls = {}
    for label, engine in engines.items():
        calls[f"{label} --network none"] = (
            lambda e=engine: e.docker_quiet("run", "--rm", "--network", "none", "busybox", "true"))
        calls[f"{label} bridge"] = lambda e=engine: e.docker_quiet("run", "--rm", "busybox", "true")
    samples = time_interleaved(calls, runs, warmup=3)
    print(report(f"docker run --rm busybox true ({runs} runs each, taking turns)", samples,
                 "berthd --network none"))
    medians = {s.label: s.median for s in samples}
    for label in engines:
        added = medians[f"{label} bridge"] - medians[f"{label} --network none"]
        print(f"{label}: networking adds {1000 * added:.1f} ms to a run (medians)")
    print(flush=True)


def _download(netns: str, url: str) -> float:
    """Bytes per second of one curl download inside `netns`."""
    out = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "curl", "-sS", "-o", "/dev/null", "-w",
                          "%{speed_download}", "--max-time", "120", url], capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"curl {url}: {out.stderr.strip()}")
    return float(out.stdout)


def bench_throughput(label: str, engine: Engine, netns: str, mib: int, repeat: int) -> None:
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
        print(f"{label}: TCP download of {mib} MiB through a published port ({repeat} runs each, median)")
        for path, url in paths.items():
            speeds = [_download(netns, url) for _ in range(repeat)]
            print(f"  {path:<36} {statistics.median(speeds) / 2**20:8.0f} MiB/s")
        print(flush=True)
    finally:
        engine.docker("rm", "-f", "bench-web", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-dockerd", action="store_true", help="berthd only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-net-") as tmp, bench_run_tag() as tag:
        root = Path(tmp) / "berthd"
        with berthd_engine(root, tag) as berth, contextlib.ExitStack() as stack:
            engines = {"berthd": (berth, daemon_netns(root))}
            if not args.no_dockerd:
                engines["dockerd"] = stack.enter_context(dockerd_in_netns(Path(tmp) / "d", tag))
            bench_run_overhead({label: e for label, (e, _) in engines.items()}, args.runs)
            for label, (engine, netns) in engines.items():
                bench_throughput(label, engine, netns, args.mib, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())

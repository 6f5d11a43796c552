"""Fixtures for the OCI runtime's tests: a busybox rootfs, bundles, a state root, a CLI runner.

The pytest process becomes a child subreaper while these tests run: the
container inits `berth-runtime create` leaves behind are reparented to it,
and each test's teardown deletes its containers and reaps their inits by pid.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.runtime import syscalls as sc
from engine.runtime.default_spec import default_spec
from engine.runtime.procinfo import reap_if_child

from .oci_runtime import OCIRuntime, give_tagged_cgroups_path, oci_runtimes

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
_counter = itertools.count()


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs with the host's static busybox and absolute /bin/busybox applet links (merged-/usr safe)."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox is not installed")
    root = tmp_path_factory.mktemp("rootfs-template") / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("/bin/busybox")
    for d in ("proc", "sys", "dev", "etc", "tmp", "root", "data"):
        (root / d).mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    return root


@dataclass
class Bundle:
    path: Path
    spec: dict[str, Any]

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.spec))

    def set_process(self, args: list[str], **fields: Any) -> None:
        self.spec["process"]["args"] = args
        self.spec["process"].update(fields)
        self.write()

    def for_container(self, container_id: str) -> Path:
        """A bundle directory of one container's own: this spec and rootfs, its (tagged) id as cgroupsPath.

        For callers that bypass the CLI runners (which give the same default, see
        give_tagged_cgroups_path); containers created at once from one bundle must
        not share a config they each rewrite.
        """
        path = self.path.parent / f"bundle-{container_id}"
        path.mkdir(exist_ok=True)
        spec = copy.deepcopy(self.spec)
        spec["root"]["path"] = str(self.rootfs)
        spec["linux"].setdefault("cgroupsPath", container_id)
        (path / "config.json").write_text(json.dumps(spec))
        return path


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: Path) -> Bundle:
    """A bundle with a private copy of the rootfs and runc-spec defaults (no terminal)."""
    path = tmp_path / "bundle"
    shutil.copytree(busybox_rootfs, path / "rootfs", symlinks=True)
    spec = copy.deepcopy(default_spec(terminal=False, args=["true"]))
    b = Bundle(path, spec)
    b.write()
    return b


@dataclass
class RuntimeCLI:
    """Runs `berth-runtime` (the real CLI, as a subprocess) against one state root."""

    root: Path
    tag: str
    created: list[str] = field(default_factory=list)

    def new_id(self, name: str = "c") -> str:
        container_id = f"{self.tag}-{name}{next(_counter)}"
        self.created.append(container_id)
        return container_id

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "engine.runtime.cli", "--root", str(self.root), *args]
        give_tagged_cgroups_path(args)
        # Files, not pipes: a detached container inherits the CLI's stdio (as with runc)
        # and would hold a pipe open long after the CLI exited.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(cmd, stdout=out, stderr=err, input=input, timeout=timeout)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} exited {result.returncode}: {result.stderr.decode()}")
        return result

    def delete_reaping(self, container_id: str, pid: int) -> int:
        """`delete --force` while acting as the supervisor that reaps the init (our orphaned grandchild).

        The CLI waits for the killed tasks to leave the cgroup; a zombie init
        only leaves once its parent (us, the subreaper) collects it.
        """
        cmd = [sys.executable, "-m", "engine.runtime.cli", "--debug", "--root", str(self.root)]
        cmd += ["delete", "--force", container_id]
        with tempfile.TemporaryFile() as err:  # a file: the CLI's children may outlive it
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            while proc.poll() is None:
                if pid:
                    reap_if_child(pid)
                time.sleep(0.005)
            if pid:
                reap_if_child(pid)
            if proc.returncode != 0:
                err.seek(0)
                print(f"delete --force {container_id} exited {proc.returncode}: {err.read().decode(errors='replace')}")
        return proc.returncode

    def state(self, container_id: str) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self("state", container_id).stdout)
        return state


@pytest.fixture(scope="module", autouse=True)
def _subreaper() -> Iterator[None]:
    if os.geteuid() != 0:
        yield
        return
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    yield
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 0)


@pytest.fixture
def runtime(tmp_path: Path, run_tag: str) -> Iterator[RuntimeCLI]:
    cli = RuntimeCLI(tmp_path / "state", run_tag)
    yield cli
    for container_id in cli.created:
        state_file = cli.root / container_id / "state.json"
        if not state_file.exists():
            continue
        cli.delete_reaping(container_id, json.loads(state_file.read_text()).get("pid", 0))


@pytest.fixture
def run_container(bundle: Bundle, runtime: RuntimeCLI) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run ``args`` in ``bundle`` in the foreground (`berth-runtime run`); returns the completed CLI."""
    def run(args: list[str], **process_fields: Any) -> subprocess.CompletedProcess[bytes]:
        bundle.set_process(args, **process_fields)
        return runtime("run", "--bundle", str(bundle.path), runtime.new_id(), check=False)

    return run


@pytest.fixture(params=oci_runtimes())
def oci(request: pytest.FixtureRequest, tmp_path: Path, run_tag: str) -> Iterator[OCIRuntime]:
    """A runtime binary by its CLI: runc and berth-runtime in turn, or only ``$RUNTIME`` when set."""
    runtime = OCIRuntime(list(request.param), tmp_path / "oci-state", run_tag)
    yield runtime
    runtime.cleanup()

"""Run one command in a throwaway QEMU guest that sees the host's files read-only.

The guest is Debian's generic kernel plus the initramfs of initramfs.py; its
root is the host's ``/`` over 9p, read-only, with tmpfs on /run, an ext4
scratch disk on /tmp and a pure cgroup2 hierarchy (guest_init.sh).  The command is written as ``job.sh``
into a per-run job directory, shared read-write; the guest writes the
command's exit status there (``exit-status``) and anything else the command
puts in ``/run/berth-job`` (a junit XML report, say).  The command's output
goes to the serial console, kept in ``console.log`` in the job directory.

The seed of the VM image recipe: the same kernel and share layout, with a
disk image instead of the host's root, is what the Berth VM will boot.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from installers.images.commands import require_tool, run
from installers.vm import initramfs, kernel
from vmbackend import qemu

#: Where the job share is mounted in the guest (guest_init.sh's $JOB).
GUEST_JOB_DIR = "/run/berth-job"
#: Host paths the guest covers with its own file systems: a checkout there gets its own share.
GUEST_TMPFS = ("/tmp", "/run")
KERNEL_ARGS = "console=ttyS0 panic=-1 quiet"

_READY = re.compile(r"^BERTH-GUEST-READY (\d+\.\d+)", re.MULTILINE)
_EXIT = re.compile(r"^BERTH-GUEST-EXIT (\d+) (\d+\.\d+)", re.MULTILINE)
_FAIL = re.compile(r"^BERTH-GUEST-FAIL (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class GuestBoot:
    kernel: kernel.GuestKernel
    initrd: Path


@dataclass(frozen=True)
class JobResult:
    exit_status: int | None  # None: the guest never reported one (see console)
    console: str
    boot_s: float | None  # guest uptime when the job started (kernel + initramfs + mounts)
    job_s: float | None  # guest uptime spent in the job
    qemu_s: float  # wall time of the QEMU process, host side
    failure: str | None  # guest_init.sh's BERTH-GUEST-FAIL reason


def prepare(cache_dir: Path, work_dir: Path) -> GuestBoot:
    """The kernel (cached in ``cache_dir``, fetched with apt when missing) and a fresh initramfs."""
    guest_kernel = kernel.fetch(cache_dir)
    return GuestBoot(guest_kernel, initramfs.build(guest_kernel, work_dir / "initrd.img"))


def job_script(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    lines = ["set -u", "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    lines += [f"cd {shlex.quote(str(cwd))}", f"exec {shlex.join(argv)}"]
    return "\n".join(lines) + "\n"


def scratch_disk(path: Path, size_mib: int) -> Path:
    """A sparse raw image with an empty ext4 filesystem (mkfs.ext4 from e2fsprogs, part of every Debian)."""
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    require_tool("mkfs.ext4", "e2fsprogs")
    run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", str(path)])
    return path


def checkout_share(path: Path) -> tuple[tuple[qemu.Share, ...], str]:
    """The extra share and kernel argument that make ``path`` visible in the guest.

    The guest covers the host's /tmp and /run with its own file systems, and CI
    may check the project out under /tmp: such a checkout is shared on its own
    (tag "checkout", read-only) and guest_init.sh mounts it back at the same path.
    """
    resolved = path.resolve()
    if not any(resolved.is_relative_to(hidden) for hidden in GUEST_TMPFS):
        return (), ""
    if any(ch.isspace() for ch in str(resolved)):
        # The path travels on the kernel command line, which splits on white space.
        raise qemu.QemuError(f"{resolved}: a checkout under {' or '.join(GUEST_TMPFS)} must not contain white space")
    return (qemu.Share(resolved, "checkout"),), f" berth.checkout={resolved}"


def run_job(
    boot: GuestBoot,
    job_dir: Path,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    memory_mib: int = 1024,
    cpus: int = 2,
    scratch_mib: int = 2048,
) -> JobResult:
    """Boot the guest, run ``argv`` in ``cwd`` as root, power off; QEMU is killed past ``timeout``.

    The guest's /tmp is an ext4 scratch disk of ``scratch_mib`` (sparse, in ``job_dir``; 0: tmpfs).
    """
    extra_shares, extra_args = checkout_share(cwd)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "job.sh").write_text(job_script(argv, cwd, env))
    disks = (scratch_disk(job_dir / "scratch.img", scratch_mib),) if scratch_mib else ()
    console = job_dir / "console.log"
    spec = qemu.DirectBoot(
        kernel=boot.kernel.vmlinuz,
        initrd=boot.initrd,
        append=KERNEL_ARGS + extra_args,
        serial_log=console,
        accel=qemu.probe_accelerator(),
        memory_mib=memory_mib,
        cpus=cpus,
        shares=(qemu.Share(Path("/"), "hostroot"), qemu.Share(job_dir, "job", readonly=False), *extra_shares),
        disks=disks,
    )
    finished = qemu.run(qemu.command_line(spec, qemu.qemu_binary()), timeout, job_dir / "qemu.log")
    text = console.read_text(errors="replace") if console.exists() else ""
    status_file = job_dir / "exit-status"
    status = int(status_file.read_text()) if status_file.exists() else None
    ready, done, failed = _READY.search(text), _EXIT.search(text), _FAIL.search(text)
    boot_s = float(ready.group(1)) if ready else None
    job_s = float(done.group(2)) - boot_s if done and boot_s is not None else None
    return JobResult(status, text, boot_s, job_s, finished.seconds, failed.group(1) if failed else None)

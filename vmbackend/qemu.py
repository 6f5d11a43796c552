"""QEMU for x86_64 guests: pick an accelerator, build the command line, run one process.

Only what booting a direct-kernel guest with 9p shares needs; no knowledge of
containers or of what the guest runs.  The accelerator is probed, never
assumed: an openable /dev/kvm is not enough (inside some clouds it is a
paravirtual "PVM" KVM that hangs stock guest firmware), so KVM is chosen only
when the CPU also shows hardware virtualisation (vmx/svm); otherwise TCG,
software emulation, which is slow but always works.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
KVM_DEVICE = Path("/dev/kvm")
ACCEL_ENV = "BERTH_QEMU_ACCEL"  # "kvm" or "tcg": overrides the probe


class QemuError(Exception):
    """QEMU is missing, failed to start, or its guest did not finish in time."""


class QemuNotInstalled(QemuError):
    pass


class QemuTimeout(QemuError):
    pass


@dataclass(frozen=True)
class Accelerator:
    name: str  # "kvm" or "tcg"
    why: str  # how the probe decided, for logs and test reports


def cpu_flags(cpuinfo: str) -> set[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def kvm_unusable_reason(device: Path = KVM_DEVICE, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Why KVM cannot boot a stock guest here, or None when it can."""
    if not device.exists():
        return f"{device} does not exist (load kvm_intel/kvm_amd or enable nested virtualisation)"
    if not cpu_flags(cpuinfo.read_text()) & {"vmx", "svm"}:
        return (
            f"{device} exists but the CPU has no vmx/svm flag: a paravirtual KVM that cannot boot "
            "stock guests (enable nested virtualisation on the host)"
        )
    if not os.access(device, os.R_OK | os.W_OK):
        return f"no read/write access to {device} (add the user to group kvm)"
    return None


def probe_accelerator(environ: Mapping[str, str] | None = None) -> Accelerator:
    environ = os.environ if environ is None else environ
    forced = environ.get(ACCEL_ENV)
    if forced in ("kvm", "tcg"):
        return Accelerator(forced, f"forced by {ACCEL_ENV}")
    reason = kvm_unusable_reason()
    if reason is None:
        return Accelerator("kvm", "hardware virtualisation is available")
    return Accelerator("tcg", f"software emulation (slow): {reason}")


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise QemuNotInstalled(f"{QEMU} not found: install the Debian package 'qemu-system-x86'")
    return path


@dataclass(frozen=True)
class Share:
    """A host directory exported over virtio-9p (mounted in the guest by ``tag``)."""

    path: Path
    tag: str
    readonly: bool = True


@dataclass(frozen=True)
class DirectBoot:
    """A guest booted straight from a kernel and initramfs (no firmware disk, no network)."""

    kernel: Path
    initrd: Path
    append: str
    serial_log: Path  # the guest's console (ttyS0) goes here
    accel: Accelerator
    memory_mib: int = 1024
    cpus: int = 2
    shares: tuple[Share, ...] = field(default_factory=tuple)
    disks: tuple[Path, ...] = field(default_factory=tuple)  # raw images, virtio-blk (vda, vdb...)


def command_line(boot: DirectBoot, binary: str = QEMU) -> list[str]:
    # q35 is reliable under TCG where microvm hung (docs: MACHINE-NOTES "The VM").
    # -no-reboot: a guest that panics or reboots ends the process instead of looping.
    argv = [
        binary,
        "-machine", "q35",
        "-accel", boot.accel.name,
        "-cpu", "host" if boot.accel.name == "kvm" else "max",
        "-m", str(boot.memory_mib),
        "-smp", str(boot.cpus),
        "-nodefaults", "-no-user-config", "-no-reboot",
        "-display", "none",
        "-nic", "none",
        "-serial", f"file:{boot.serial_log}",
        "-kernel", str(boot.kernel),
        "-initrd", str(boot.initrd),
        "-append", boot.append,
    ]  # fmt: skip
    for share in boot.shares:
        opts = f"local,path={share.path},mount_tag={share.tag},security_model=none,multidevs=remap"
        argv += ["-virtfs", opts + (",readonly=on" if share.readonly else "")]
    for disk in boot.disks:
        # cache=unsafe: a throwaway disk, never flushed to the host's platters.
        argv += ["-drive", f"file={disk},format=raw,if=virtio,cache=unsafe"]
    return argv


@dataclass(frozen=True)
class Finished:
    returncode: int
    seconds: float  # wall time from exec to exit


def run(argv: list[str], timeout: float, stderr_log: Path) -> Finished:
    """Run QEMU to completion; past ``timeout`` it is killed (by PID) and QemuTimeout raised."""
    start = time.monotonic()
    with open(stderr_log, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
    log.info("qemu started, pid %d: %s", proc.pid, " ".join(argv))
    try:
        returncode = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise QemuTimeout(f"the guest did not power off within {timeout:.0f} s (console: see the serial log)") from None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return Finished(returncode, time.monotonic() - start)

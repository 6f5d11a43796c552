"""The QEMU driver's pure parts: accelerator choice and the command line (no guest is booted here;
tests/runtime/cgroups/test_cgroup_suite_in_vm.py boots one)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vmbackend import qemu


def boot(tmp_path: Path, accel: str = "tcg") -> qemu.DirectBoot:
    return qemu.DirectBoot(
        kernel=tmp_path / "vmlinuz",
        initrd=tmp_path / "initrd.img",
        append="console=ttyS0 panic=-1",
        serial_log=tmp_path / "console.log",
        accel=qemu.Accelerator(accel, "test"),
        memory_mib=512,
        cpus=1,
        shares=(qemu.Share(Path("/"), "hostroot"), qemu.Share(tmp_path / "job", "job", readonly=False)),
        disks=(tmp_path / "scratch.img",),
    )


def option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == option]


def test_command_line_boots_the_kernel_with_shares_and_disks(tmp_path: Path) -> None:
    argv = qemu.command_line(boot(tmp_path), "/usr/bin/qemu-system-x86_64")
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert option_values(argv, "-accel") == ["tcg"]
    assert option_values(argv, "-cpu") == ["max"]  # "host" exists only with KVM
    assert option_values(argv, "-kernel") == [str(tmp_path / "vmlinuz")]
    assert option_values(argv, "-append") == ["console=ttyS0 panic=-1"]
    assert option_values(argv, "-serial") == [f"file:{tmp_path / 'console.log'}"]
    assert "-no-reboot" in argv  # a panicking guest ends the process
    assert option_values(argv, "-virtfs") == [
        "local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap,readonly=on",
        f"local,path={tmp_path / 'job'},mount_tag=job,security_model=none,multidevs=remap",
    ]
    assert option_values(argv, "-drive") == [f"file={tmp_path / 'scratch.img'},format=raw,if=virtio,cache=unsafe"]


def test_kvm_uses_the_host_cpu(tmp_path: Path) -> None:
    argv = qemu.command_line(boot(tmp_path, "kvm"))
    assert option_values(argv, "-accel") == ["kvm"] and option_values(argv, "-cpu") == ["host"]


def test_kvm_needs_virtualisation_flags_not_just_the_device(tmp_path: Path) -> None:
    paravirtual = tmp_path / "cpuinfo-pvm"
    paravirtual.write_text("processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n")
    hardware = tmp_path / "cpuinfo-vmx"
    hardware.write_text("processor\t: 0\nflags\t\t: fpu sse2 vmx\n")
    device = Path("/dev/null")  # exists and is read/write for everyone, like a usable /dev/kvm
    reason = qemu.kvm_unusable_reason(device, paravirtual)
    assert reason is not None and "vmx/svm" in reason
    assert qemu.kvm_unusable_reason(device, hardware) is None
    missing = qemu.kvm_unusable_reason(tmp_path / "kvm", hardware)
    assert missing is not None and "does not exist" in missing


def test_accelerator_can_be_forced_and_otherwise_is_probed() -> None:
    assert qemu.probe_accelerator({qemu.ACCEL_ENV: "tcg"}).name == "tcg"
    probed = qemu.probe_accelerator({})
    assert probed.name == ("kvm" if qemu.kvm_unusable_reason() is None else "tcg")
    assert probed.why


def test_run_kills_a_process_that_overstays_its_timeout(tmp_path: Path) -> None:
    # The pid is written before the exec: it is in the log whenever the timeout strikes.
    with pytest.raises(qemu.QemuTimeout):
        qemu.run(["sh", "-c", "echo $$; exec sleep 60"], 2.0, tmp_path / "out.log")
    pid = int((tmp_path / "out.log").read_text().split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped by run(), not left behind


def test_run_reports_the_exit_status(tmp_path: Path) -> None:
    finished = qemu.run([sys.executable, "-c", "raise SystemExit(3)"], 60.0, tmp_path / "out.log")
    assert finished.returncode == 3

"""A classic-BPF prologue that answers ENOSYS for syscalls newer than a profile.

Why (runc ``libcontainer/seccomp/patchbpf``): a profile's default action is
usually ERRNO(EPERM).  A syscall newer than the profile (or than libseccomp,
which silently drops names it does not know) then fails with EPERM, and libc
treats EPERM as a real refusal instead of falling back to an older call the
way it does on ENOSYS ("this kernel does not have it").  glibc 2.39's
``fchmodat`` → ``fchmodat2`` and ``clone3`` → ``clone`` are such fallbacks.
So syscall numbers above the highest one the profile names, on the native
architecture, get ENOSYS before the libseccomp program runs.

The prologue is pure data (``struct sock_filter`` instructions); it ends by
falling through to the program it is prepended to, which reloads what it needs.
"""

from __future__ import annotations

import struct

# <linux/filter.h> opcodes
_BPF_LD_W_ABS = 0x20
_BPF_JMP_JEQ_K = 0x15
_BPF_JMP_JGT_K = 0x25
_BPF_JMP_JSET_K = 0x45
_BPF_RET_K = 0x06
# <linux/seccomp.h>: offsets in struct seccomp_data and the ERRNO action
_OFFSET_NR = 0
_OFFSET_ARCH = 4
SECCOMP_RET_ERRNO = 0x00050000
ENOSYS = 38
# <linux/audit.h> and arch/x86/include/uapi/asm/unistd.h
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def enosys_prologue(audit_arch: int, last_known_nr: int) -> bytes:
    """Instructions: on ``audit_arch``, syscall number > ``last_known_nr`` → ERRNO(ENOSYS).

    On x86_64 the x32 ABI (numbers with bit 30 set) is left to the main
    program, as are other architectures: their tables differ.
    """
    if not 0 <= last_known_nr < X32_SYSCALL_BIT:
        raise ValueError(f"last known syscall number out of range: {last_known_nr}")
    skip_x32 = audit_arch == AUDIT_ARCH_X86_64
    body = [_insn(_BPF_LD_W_ABS, _OFFSET_NR)]
    if skip_x32:
        body.append(_insn(_BPF_JMP_JSET_K, X32_SYSCALL_BIT, jt=2))  # x32 → on to the main program
    body.append(_insn(_BPF_JMP_JGT_K, last_known_nr, jf=1))  # newer → ENOSYS, else → main program
    body.append(_insn(_BPF_RET_K, SECCOMP_RET_ERRNO | ENOSYS))
    head = [
        _insn(_BPF_LD_W_ABS, _OFFSET_ARCH),
        _insn(_BPF_JMP_JEQ_K, audit_arch, jf=len(body)),  # another architecture → main program
    ]
    return b"".join(head + body)

"""Build the BPF_PROG_TYPE_CGROUP_DEVICE program that enforces device rules on v2.

cgroup v2 has no devices.allow/deny: the kernel runs an eBPF program attached
to the cgroup with BPF_CGROUP_DEVICE for every device access
(Documentation/admin-guide/cgroup-v2.rst, "Device controller").  The program
sees ``struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }``
(include/uapi/linux/bpf.h) where ``access_type`` is ``(access << 16) | type``,
and returns 1 to allow, 0 to deny.

The rules keep their OCI meaning, "the last matching rule wins", by testing
them from last to first and returning at the first match.  When nothing
matches the program allows, like a v1 cgroup that inherits the root's
"allow everything"; a configuration that starts with a deny-all rule (as
Docker's and runc's default lists do) therefore denies every device it does
not list.  This module only assembles instructions; loading and attaching
are bpf(2) calls in engine.runtime.syscalls.
"""

from __future__ import annotations

import struct

from engine.runtime.abcs import Sequence
from engine.runtime.cgroups.devices import DeviceRule

BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4

# Opcodes (include/uapi/linux/bpf_common.h, bpf.h): class | op | source.
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_ALU32_MOV_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_ALU64_MOV_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
_JMP_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JMP_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
_JMP_EXIT = 0x95  # BPF_JMP | BPF_EXIT

_R0, _R1, _R2, _R3, _R4, _R5 = range(6)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn``: u8 code, u8 dst:4|src:4, s16 off, s32 imm (little endian)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_mask(access: str) -> int:
    return (
        (BPF_DEVCG_ACC_READ if "r" in access else 0)
        | (BPF_DEVCG_ACC_WRITE if "w" in access else 0)
        | (BPF_DEVCG_ACC_MKNOD if "m" in access else 0)
    )


def _rule_block(rule: DeviceRule) -> list[bytes]:
    # Each check jumps past the end of this block when the access does not match.
    body: list[tuple[bool, tuple[int, int, int, int]]] = []  # (is a jump, (code, dst, src, imm))
    if rule.type != "a":
        dev_type = BPF_DEVCG_DEV_CHAR if rule.type == "c" else BPF_DEVCG_DEV_BLOCK
        body.append((True, (_JMP_JNE_K, _R2, 0, dev_type)))
        mask = _access_mask(rule.access)
        if mask != 7:
            # Allowed only if the requested access bits are a subset of the rule's.
            body.append((False, (_ALU32_MOV_X, _R1, _R3, 0)))
            body.append((False, (_ALU32_AND_K, _R1, 0, mask)))
            body.append((True, (_JMP_JNE_X, _R1, _R3, 0)))
        if rule.major is not None:
            body.append((True, (_JMP_JNE_K, _R4, 0, rule.major)))
        if rule.minor is not None:
            body.append((True, (_JMP_JNE_K, _R5, 0, rule.minor)))
    total = len(body) + 2  # + "r0 = verdict" + "exit"
    out = []
    for i, (is_jump, (code, dst, src, imm)) in enumerate(body):
        out.append(insn(code, dst, src, off=total - i - 1 if is_jump else 0, imm=imm))
    out.append(insn(_ALU64_MOV_K, _R0, imm=1 if rule.allow else 0))
    out.append(insn(_JMP_EXIT))
    return out


def build_program(rules: Sequence[DeviceRule]) -> bytes:
    """The program's instructions for ``rules`` (OCI order), ready for BPF_PROG_LOAD."""
    prog = [
        insn(_LDX_MEM_W, _R2, _R1, off=0),  # r2 = ctx->access_type
        insn(_ALU32_AND_K, _R2, imm=0xFFFF),  # r2 = device type
        insn(_LDX_MEM_W, _R3, _R1, off=0),
        insn(_ALU32_RSH_K, _R3, imm=16),  # r3 = requested access bits
        insn(_LDX_MEM_W, _R4, _R1, off=4),  # r4 = major
        insn(_LDX_MEM_W, _R5, _R1, off=8),  # r5 = minor
    ]
    for rule in reversed(rules):
        prog.extend(_rule_block(rule))
        if rule.type == "a":
            break  # "a" matches every access (as in v1): the rules before it can never decide
    else:
        prog.append(insn(_ALU64_MOV_K, _R0, imm=1))  # nothing matched: allow, like v1's root
        prog.append(insn(_JMP_EXIT))
    return b"".join(prog)

"""Pure conversions, no root: OCI linux.resources → file writes per version,
device rules, the eBPF device program's shape, path resolution, parsers."""

from __future__ import annotations

import struct

import pytest

from engine.runtime.cgroups import Hierarchies, open_in
from engine.runtime.cgroups.cgpath import expand_slice, format_resolved, resolve, systemd_to_path
from engine.runtime.cgroups.devices import parse_rule, parse_rules
from engine.runtime.cgroups.devices_bpf import build_program
from engine.runtime.cgroups.errors import InvalidResources
from engine.runtime.cgroups.fsio import parse_flat_keyed, parse_limit
from engine.runtime.cgroups.hierarchy import CgroupMount
from engine.runtime.cgroups.resources import FileWrite
from engine.runtime.cgroups.resources_v1 import plan_v1
from engine.runtime.cgroups.resources_v2 import cpu_weight_from_shares, io_weight_from_blkio, plan_v2
from engine.runtime.cgroups.stats import BlkioDeviceBytes, parse_v1_blkio, parse_v2_io_stat


def files(plan: list[FileWrite]) -> list[tuple[str, str]]:
    return [(w.name, w.value) for w in plan]


# ---------------------------------------------------------------- v2 conversions


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (512, 20)])
def test_cpu_weight_from_shares_matches_runc(shares: int, weight: int) -> None:
    assert cpu_weight_from_shares(shares) == weight


@pytest.mark.parametrize(("blkio", "weight"), [(10, 1), (500, 4950), (1000, 10000)])
def test_io_weight_from_blkio_weight(blkio: int, weight: int) -> None:
    assert io_weight_from_blkio(blkio) == weight


def test_v2_memory_swap_is_memory_plus_swap_minus_limit() -> None:
    plan = plan_v2({"memory": {"limit": 100 << 20, "swap": 300 << 20, "reservation": 50 << 20}})
    assert files(plan) == [
        ("memory.max", str(100 << 20)),
        ("memory.swap.max", str(200 << 20)),
        ("memory.low", str(50 << 20)),
    ]
    assert {w.controller for w in plan} == {"memory"}


def test_v2_unlimited_values_are_written_as_max() -> None:
    assert files(plan_v2({"memory": {"limit": -1}, "pids": {"limit": -1}})) == [
        ("memory.max", "max"),
        ("memory.swap.max", "max"),  # runc: unlimited memory, unset swap → unlimited swap
        ("pids.max", "max"),
    ]


def test_v2_swap_below_limit_or_without_limit_is_rejected() -> None:
    with pytest.raises(InvalidResources):
        plan_v2({"memory": {"limit": 200, "swap": 100}})
    with pytest.raises(InvalidResources):
        plan_v2({"memory": {"swap": 100}})


def test_v2_cpu_max_quota_period_and_cpuset() -> None:
    plan = plan_v2({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"}})
    assert files(plan) == [
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
    ]
    assert files(plan_v2({"cpu": {"period": 20000}})) == [("cpu.max", "max 20000")]
    assert files(plan_v2({"cpu": {"quota": 30000}})) == [("cpu.max", "30000 100000")]
    assert files(plan_v2({"cpu": {"quota": -1, "period": 100000}})) == [("cpu.max", "max 100000")]


def test_v2_blkio_weight_prefers_bfq_then_converted_io_weight() -> None:
    (w,) = plan_v2({"blockIO": {"weight": 500}})
    assert (w.controller, w.name, w.value) == ("io", "io.bfq.weight", "500")
    assert w.fallbacks == (("io.weight", "default 4950"),)


def test_v2_throttles_go_to_io_max() -> None:
    plan = plan_v2(
        {
            "blockIO": {
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}],
            }
        }
    )
    assert files(plan) == [("io.max", "8:0 rbps=1048576"), ("io.max", "8:0 wiops=max")]


def test_v2_unified_keys_come_last_and_name_their_controller() -> None:
    plan = plan_v2({"memory": {"limit": 1000}, "unified": {"memory.high": "900", "cgroup.max.depth": 3}})
    assert files(plan)[-2:] == [("memory.high", "900"), ("cgroup.max.depth", "3")]
    assert [w.controller for w in plan[-2:]] == ["memory", ""]
    with pytest.raises(InvalidResources):
        plan_v2({"unified": {"../escape": "1"}})


def test_v2_ignores_what_it_cannot_express() -> None:
    assert plan_v2({"memory": {"swappiness": 10, "disableOOMKiller": True, "kernel": 1}}) == []
    assert plan_v2({"network": {"classID": 7}}) == []


def test_v2_hugepages() -> None:
    assert files(plan_v2({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})) == [
        ("hugetlb.2MB.max", "4194304")
    ]


# ---------------------------------------------------------------- v1 conversions


def test_v1_memory_files_and_oom_killer() -> None:
    plan = plan_v1({"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 0, "disableOOMKiller": True}})
    assert files(plan) == [
        ("memory.limit_in_bytes", str(64 << 20)),
        ("memory.soft_limit_in_bytes", str(32 << 20)),
        ("memory.swappiness", "0"),
        ("memory.oom_control", "1"),
    ]


def test_v1_memory_and_swap_order_keeps_limit_below_memsw() -> None:
    resources = {"memory": {"limit": 200, "swap": 400}}
    # From unlimited (or a larger memsw): the limit first.
    assert [w.name for w in plan_v1(resources, current_memsw=None)] == [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ]
    # Raising above the current memsw: memsw first, or the kernel refuses the limit.
    assert [w.name for w in plan_v1(resources, current_memsw=100)] == [
        "memory.memsw.limit_in_bytes",
        "memory.limit_in_bytes",
    ]
    with pytest.raises(InvalidResources):
        plan_v1({"memory": {"limit": 400, "swap": 200}})


def test_v1_cpu_period_is_written_before_quota() -> None:
    plan = plan_v1({"cpu": {"quota": 20000, "period": 50000, "shares": 512, "cpus": "1"}})
    assert files(plan) == [
        ("cpu.shares", "512"),
        ("cpu.cfs_period_us", "50000"),
        ("cpu.cfs_quota_us", "20000"),
        ("cpuset.cpus", "1"),
    ]
    assert [w.controller for w in plan] == ["cpu", "cpu", "cpu", "cpuset"]


def test_v1_pids_zero_leaves_alone_negative_is_max() -> None:
    assert plan_v1({"pids": {"limit": 0}}) == []
    assert files(plan_v1({"pids": {"limit": -1}})) == [("pids.max", "max")]
    assert files(plan_v1({"pids": {"limit": 5}})) == [("pids.max", "5")]


def test_v1_blkio_weight_and_throttles() -> None:
    plan = plan_v1(
        {
            "blockIO": {
                "weight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 4096}],
            }
        }
    )
    assert files(plan) == [
        ("blkio.weight", "300"),
        ("blkio.weight_device", "8:0 500"),
        ("blkio.throttle.write_bps_device", "8:16 4096"),
    ]
    assert plan[0].fallbacks == (("blkio.bfq.weight", "300"),)


def test_v1_devices_keep_their_order() -> None:
    plan = plan_v1(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": True, "type": "c", "major": 136, "access": "rwm"},
            ]
        }
    )
    assert files(plan) == [
        ("devices.deny", "a *:* rwm"),
        ("devices.allow", "c 1:3 rw"),
        ("devices.allow", "c 136:* rwm"),
    ]


def test_invalid_values_are_rejected_with_the_field_name() -> None:
    with pytest.raises(InvalidResources, match=r"memory\.limit"):
        plan_v1({"memory": {"limit": "lots"}})
    with pytest.raises(InvalidResources, match="access"):
        parse_rule({"allow": True, "access": "rwx"})
    with pytest.raises(InvalidResources, match="allow"):
        parse_rule({"type": "c"})


# ---------------------------------------------------------------- eBPF device program


def decode(prog: bytes) -> list[tuple[int, int, int, int, int]]:
    out = []
    for i in range(0, len(prog), 8):
        code, regs, off, imm = struct.unpack("<BBhi", prog[i : i + 8])
        out.append((code, regs & 0xF, regs >> 4, off, imm))
    return out


def run_program(prog: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """A tiny interpreter for the instructions build_program emits, to check its logic without root."""
    insns = decode(prog)
    regs = [0] * 11
    ctx = [(access << 16) | dev_type, major, minor]
    pc = 0
    while True:
        code, dst, src, off, imm = insns[pc]
        pc += 1
        if code == 0x61:
            regs[dst] = ctx[off // 4]
        elif code == 0x54:
            regs[dst] &= imm & 0xFFFFFFFF
        elif code == 0x74:
            regs[dst] >>= imm
        elif code == 0xBC:
            regs[dst] = regs[src]
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code == 0x5D:
            pc += off if regs[dst] != regs[src] else 0
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


CHAR, BLOCK = 2, 1
READ, WRITE, MKNOD = 2, 4, 1


def test_bpf_program_last_matching_rule_wins() -> None:
    prog = build_program(
        parse_rules(
            [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": True, "type": "c", "major": 136, "access": "rwm"},
                {"allow": False, "type": "c", "major": 136, "minor": 7, "access": "rwm"},
            ]
        )
    )
    assert run_program(prog, CHAR, READ, 1, 3) == 1
    assert run_program(prog, CHAR, READ | WRITE, 1, 3) == 1
    assert run_program(prog, CHAR, MKNOD, 1, 3) == 0  # m not in the rule's access
    assert run_program(prog, BLOCK, READ, 1, 3) == 0  # wrong type
    assert run_program(prog, CHAR, READ, 136, 4) == 1  # minor wildcard
    assert run_program(prog, CHAR, READ, 136, 7) == 0  # a later deny overrides
    assert run_program(prog, CHAR, READ, 1, 5) == 0  # the deny-all


def test_bpf_program_without_rules_allows_like_the_v1_root() -> None:
    prog = build_program([])
    assert run_program(prog, CHAR, READ, 1, 1) == 1
    prog = build_program(parse_rules([{"allow": False, "type": "b", "access": "w"}]))
    assert run_program(prog, BLOCK, WRITE, 8, 0) == 0
    assert run_program(prog, BLOCK, READ, 8, 0) == 1


def test_bpf_program_ends_every_path_with_exit() -> None:
    prog = build_program(parse_rules([{"allow": True, "type": "c", "major": 1, "minor": 3}]))
    insns = decode(prog)
    assert insns[-1][0] == 0x95
    for i, (code, _dst, _src, off, _imm) in enumerate(insns):
        if code in (0x55, 0x5D):
            assert 0 < i + 1 + off < len(insns)


# ---------------------------------------------------------------- paths


OWN = {"memory": "/process_api/abc", "cpu": "/", "": "/user.slice/session-1.scope"}


def test_relative_path_nests_under_the_callers_cgroup_per_hierarchy() -> None:
    assert resolve("berth/c1", "c1", ["memory", "cpu", ""], OWN) == {
        "memory": "/process_api/abc/berth/c1",
        "cpu": "/berth/c1",
        "": "/user.slice/session-1.scope/berth/c1",
    }


def test_v2_relative_paths_nest_under_the_parent_of_the_callers_cgroup() -> None:
    # The caller's own cgroup holds the caller: v2 could enable no controller below it (runc's fs2 rule).
    mount = CgroupMount("/sys/fs/cgroup", "/", 2, frozenset())
    service = Hierarchies(mode="v2", v2=mount, own={"": "/system.slice/berthd.service"})
    assert open_in(service, "berth/c1", "c1").path == "/system.slice/berth/c1"
    assert open_in(service, "/abs/c1", "c1").path == "/abs/c1"  # absolute paths are not affected
    at_root = Hierarchies(mode="v2", v2=mount, own={"": "/"})  # the root is exempt from the rule
    assert open_in(at_root, None, "c2").path == "/berth/c2"


def test_no_path_means_berth_slash_id() -> None:
    assert resolve(None, "c9", ["cpu"], OWN) == {"cpu": "/berth/c9"}


def test_absolute_path_is_relative_to_every_root() -> None:
    assert resolve("/a/b", "x", ["memory", "cpu"], OWN) == {"memory": "/a/b", "cpu": "/a/b"}


def test_systemd_form_maps_to_the_units_path() -> None:
    assert expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert systemd_to_path("system.slice:docker:abc") == "/system.slice/docker-abc.scope"
    assert systemd_to_path(":berth:abc") == "/system.slice/berth-abc.scope"
    assert resolve("user-1000.slice:berth:c1", "c1", ["cpu"], OWN) == {
        "cpu": "/user.slice/user-1000.slice/berth-c1.scope"
    }
    with pytest.raises(InvalidResources):
        systemd_to_path("bad:berth:")


def test_resolved_form_round_trips() -> None:
    paths = resolve("berth/c1", "c1", ["memory", "cpu", "cpuacct", ""], OWN)
    stored = format_resolved(paths)
    assert resolve(stored, "ignored", ["memory", "cpu", "cpuacct", ""], {}) == paths
    assert format_resolved({"cpu": "/x", "memory": "/x"}) == "/x"


def test_dot_dot_is_refused() -> None:
    with pytest.raises(InvalidResources):
        resolve("../../etc", "x", ["cpu"], OWN)


# ---------------------------------------------------------------- parsers


def test_v1_blkio_and_v2_io_stat_parse_per_device() -> None:
    v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:16 Read 1\nTotal 12289\n"
    assert parse_v1_blkio(v1) == [BlkioDeviceBytes(8, 0, 4096, 8192), BlkioDeviceBytes(8, 16, 1, 0)]
    v2 = "8:16 rbytes=5 wbytes=6 rios=1 wios=1 dbytes=0 dios=0\n8:0 rbytes=1 wbytes=2 rios=1 wios=1\n"
    assert parse_v2_io_stat(v2) == [BlkioDeviceBytes(8, 0, 1, 2), BlkioDeviceBytes(8, 16, 5, 6)]


def test_limits_parse_max_and_v1_unlimited_as_none() -> None:
    assert parse_limit("max\n") is None
    assert parse_limit("9223372036854771712\n") is None
    assert parse_limit("1048576\n") == 1048576
    assert parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")["oom_kill"] == 3

"""Seccomp: Docker profile conversion, BPF compilation and real filters in forked children.

Every filter is loaded in a child made by os.fork() that reports over a pipe
and leaves with os._exit: the pytest process itself is never filtered.
Probes use harmless arguments so that, unfiltered, each syscall fails with a
*different* errno (or succeeds): the control runs prove the probes can fail.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyseccomp
import pytest

from engine.runtime import syscalls
from engine.runtime.capabilities import DEFAULT_CAPABILITIES, apply_capabilities
from engine.runtime.seccomp import (
    compile_seccomp,
    default_seccomp,
    docker_profile_to_oci,
    seccomp_features,
    set_no_new_privs,
)
from engine.runtime.seccomp_bpf import (
    SeccompError,
    SeccompLoadFailed,
    SeccompUnsupported,
    clear_memory_cache,
    load_seccomp,
    seccomp_cache_key,
)

from .forked import run_in_child

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or os.uname().machine != "x86_64", reason="root on x86_64")

# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl)
NR_PERSONALITY = 135
NR_REBOOT = 169
NR_MOUNT = 165
NR_ADD_KEY = 248
NR_KEYCTL = 250
NR_UNSHARE = 272
NR_CLONE3 = 435
CLONE_NEWUSER = 0x10000000
ADDR_NO_RANDOMIZE = 0x0040000
PER_LINUX32 = 0x0008
PER_QUERY = 0xFFFFFFFF

ALL_X86 = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def probe(number: int, *args: int) -> int | str:
    """'ok' or the errno a raw syscall fails with."""
    try:
        syscalls.raw_syscall(number, *args)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def dangerous_probes() -> dict[str, int | str]:
    # Arguments chosen so that nothing happens even if the call is allowed.
    return {
        "keyctl": probe(NR_KEYCTL, 9999),  # no such keyctl operation
        "add_key": probe(NR_ADD_KEY, 0, 0, 0, 0, 0),  # NULL type
        "mount": probe(NR_MOUNT, 0, 0, 0, 0, 0),  # NULL target
        "reboot": probe(NR_REBOOT, 0, 0, 0, 0),  # wrong magic numbers
        "unshare_user": probe(NR_UNSHARE, CLONE_NEWUSER),  # this child only
        "clone3": probe(NR_CLONE3, 0, 0),  # size 0: rejected before doing anything
        "personality_query": probe(NR_PERSONALITY, PER_QUERY),
        "personality_no_aslr": probe(NR_PERSONALITY, ADDR_NO_RANDOMIZE),
    }


@pytest.fixture(scope="module")
def default_bpf() -> bytes:
    return compile_seccomp(default_seccomp())


def _under_default(bpf: bytes, then: Callable[[], Any]) -> Callable[[], Any]:
    def child() -> Any:
        set_no_new_privs()
        load_seccomp(bpf)
        return then()

    return child


def test_default_profile_blocks_dangerous_syscalls_with_eperm(default_bpf: bytes) -> None:
    control, _ = run_in_child(dangerous_probes)
    filtered, status = run_in_child(_under_default(default_bpf, dangerous_probes))
    assert os.waitstatus_to_exitcode(status) == 0
    # Unfiltered, root gets the kernel's own answers ...
    assert control["ok"] == {
        "keyctl": errno.errorcode[errno.EOPNOTSUPP],
        "add_key": "EFAULT",
        "mount": "EFAULT",
        "reboot": "EINVAL",
        "unshare_user": "ok",
        "clone3": "EINVAL",
        "personality_query": "ok",
        "personality_no_aslr": "ok",
    }
    # ... and under Docker's default profile (default caps) seccomp answers first.
    assert filtered["ok"] == {
        "keyctl": "EPERM",
        "add_key": "EPERM",
        "mount": "EPERM",  # allowed only with CAP_SYS_ADMIN
        "reboot": "EPERM",  # allowed only with CAP_SYS_BOOT
        "unshare_user": "EPERM",
        "clone3": "ENOSYS",  # the profile's errnoRet 38, so glibc falls back to clone
        "personality_query": "ok",  # args rule: 0xffffffff is allowed
        "personality_no_aslr": "EPERM",  # any other persona is not
    }


def test_default_profile_lets_ordinary_work_go_on(default_bpf: bytes, tmp_path: Any) -> None:
    target = tmp_path / "file"

    def work() -> dict[str, Any]:
        fd = os.open(target, os.O_CREAT | os.O_WRONLY, 0o600)
        os.write(fd, b"hello")
        os.close(fd)
        with open(target, "rb") as f:
            content = f.read().decode()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        seen = []
        # pthread_create tries clone3 (ENOSYS here) and falls back to clone(CLONE_THREAD...).
        thread = threading.Thread(target=lambda: seen.append(os.getpid()))
        thread.start()
        thread.join()
        a, b = socket.socketpair()
        a.sendall(b"x")
        return {
            "getpid": os.getpid() > 1,
            "content": content,
            "fork_exit": os.waitstatus_to_exitcode(status),
            "thread": seen == [os.getpid()],
            "socketpair": b.recv(1).decode(),
        }

    result, status = run_in_child(_under_default(default_bpf, work))
    assert os.waitstatus_to_exitcode(status) == 0
    assert result == {"ok": {"getpid": True, "content": "hello", "fork_exit": 7, "thread": True, "socketpair": "x"}}


def test_shell_execed_under_default_profile_prints_ok(default_bpf: bytes) -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            set_no_new_privs()
            load_seccomp(default_bpf)
            os.execv("/bin/sh", ["sh", "-c", "echo ok"])
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        out = inp.read()
    _, status = os.waitpid(pid, 0)
    assert (out, os.waitstatus_to_exitcode(status)) == (b"ok\n", 0)


def test_errno_action_returns_custom_errno() -> None:
    config = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ALL_X86,
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
            {"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO"},  # errnoRet defaults to EPERM
        ],
    }
    bpf = compile_seccomp(config)

    def child() -> list[int | None]:
        set_no_new_privs()
        load_seccomp(bpf)
        codes: list[int | None] = []
        for call in (os.getcwd, lambda: os.mkdir("/proc/nonexistent/x")):
            try:
                call()
                codes.append(None)
            except OSError as exc:
                codes.append(exc.errno)
        return codes

    result, _ = run_in_child(child)
    assert result == {"ok": [errno.EXDEV, errno.EPERM]}


def test_args_conditions_same_index_are_ored_different_indexes_anded() -> None:
    config = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            # Two conditions on arg 0: matches persona 8 OR 0x20000 (runc splits the rule).
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EACCES,
                "args": [
                    {"index": 0, "value": PER_LINUX32, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"},
                ],
            },
            # arg 0 == AF_INET AND (arg 1 & 0xf) == SOCK_DGRAM (Python ORs SOCK_CLOEXEC into the type).
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EAFNOSUPPORT,
                "args": [
                    {"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 0xF, "valueTwo": socket.SOCK_DGRAM, "op": "SCMP_CMP_MASKED_EQ"},
                ],
            },
        ],
    }
    bpf = compile_seccomp(config)

    def sock(family: int, kind: int) -> int | str:
        try:
            socket.socket(family, kind).close()
        except OSError as exc:
            return errno.errorcode[exc.errno or 0]
        return "ok"

    def child() -> dict[str, Any]:
        set_no_new_privs()
        load_seccomp(bpf)
        return {
            "p8": probe(NR_PERSONALITY, PER_LINUX32),
            "p20000": probe(NR_PERSONALITY, 0x20000),
            "pquery": probe(NR_PERSONALITY, PER_QUERY),
            "inet_dgram": sock(socket.AF_INET, socket.SOCK_DGRAM),
            "inet_stream": sock(socket.AF_INET, socket.SOCK_STREAM),
            "unix_dgram": sock(socket.AF_UNIX, socket.SOCK_DGRAM),
        }

    result, _ = run_in_child(child)
    assert result == {
        "ok": {
            "p8": "EACCES",
            "p20000": "EACCES",
            "pquery": "ok",
            "inet_dgram": "EAFNOSUPPORT",
            "inet_stream": "ok",
            "unix_dgram": "ok",
        }
    }


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS"])
def test_kill_action_kills_with_sigsys(action: str) -> None:
    bpf = compile_seccomp({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": action}]})

    def child() -> str:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGSYS dumps core: leave no file behind
        set_no_new_privs()
        load_seccomp(bpf)
        os.uname()
        return "survived"

    result, status = run_in_child(child)
    assert result is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_loading_needs_no_new_privs_or_cap_sys_admin(default_bpf: bytes) -> None:
    def child() -> str:
        caps = list(DEFAULT_CAPABILITIES)  # no CAP_SYS_ADMIN
        apply_capabilities({k: caps for k in ("bounding", "effective", "permitted")})
        try:
            load_seccomp(default_bpf)
        except SeccompLoadFailed as exc:
            return str(exc)
        return "loaded"

    result, _ = run_in_child(child)
    assert "Permission denied" in result["ok"] and "no_new_privs" in result["ok"]


def test_filter_flags_are_passed_to_the_kernel(default_bpf: bytes) -> None:
    def child() -> list[str]:
        set_no_new_privs()
        load_seccomp(default_bpf, ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
        load_seccomp(default_bpf, ["SECCOMP_FILTER_FLAG_TSYNC"])  # filters stack
        return [line for line in open("/proc/self/status").read().splitlines() if line.startswith("Seccomp")]

    result, _ = run_in_child(child)
    assert result["ok"][0].split() == ["Seccomp:", "2"]  # SECCOMP_MODE_FILTER
    assert result["ok"][1].split() == ["Seccomp_filters:", "2"]


def test_bad_specs_raise_clear_errors() -> None:
    base = {"defaultAction": "SCMP_ACT_ALLOW"}
    with pytest.raises(SeccompError, match="unknown seccomp action"):
        compile_seccomp({"defaultAction": "SCMP_ACT_FOO"})
    with pytest.raises(SeccompUnsupported, match="SCMP_ACT_NOTIFY"):
        compile_seccomp({**base, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]})
    with pytest.raises(SeccompError, match="errnoRet is only valid"):
        compile_seccomp({**base, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]})
    with pytest.raises(SeccompError, match="unknown operator"):
        compile_seccomp({**base, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "args": [{"index": 0}]}]})
    with pytest.raises(SeccompError, match="unknown seccomp architecture"):
        compile_seccomp({**base, "architectures": ["SCMP_ARCH_Z80"]})
    with pytest.raises(SeccompError, match="unknown seccomp flag"):
        compile_seccomp({**base, "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]})
    with pytest.raises(SeccompUnsupported):
        load_seccomp(b"", ["SECCOMP_FILTER_FLAG_NEW_LISTENER"])


def test_compiled_program_is_deterministic_and_cached(tmp_path: Any) -> None:
    config = default_seccomp()
    clear_memory_cache()
    first = compile_seccomp(config, cache_dir=tmp_path)
    assert compile_seccomp(config) is first  # memory cache: the same object, no rebuild
    on_disk = tmp_path / f"{seccomp_cache_key(config)}.bpf"
    assert on_disk.read_bytes() == first
    clear_memory_cache()
    assert compile_seccomp(config) == first  # rebuilt from scratch: identical bytes
    # Key order does not matter: the key is the canonical JSON.
    assert seccomp_cache_key(dict(reversed(list(config.items())))) == seccomp_cache_key(config)
    # The disk cache is really read: plant a different (valid) program under the key.
    other = compile_seccomp({"defaultAction": "SCMP_ACT_ALLOW"})
    on_disk.write_bytes(other)
    clear_memory_cache()
    assert compile_seccomp(config, cache_dir=tmp_path) == other != first
    clear_memory_cache()


def test_disk_cache_is_private_and_ignores_programs_others_could_write(tmp_path: Any) -> None:
    """A planted filter would weaken every container of the profile: only our own 0600 files count."""
    config = default_seccomp()
    cache = tmp_path / "cache"
    clear_memory_cache()
    old_umask = os.umask(0)
    try:
        first = compile_seccomp(config, cache_dir=cache)
    finally:
        os.umask(old_umask)
    on_disk = cache / f"{seccomp_cache_key(config)}.bpf"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600
    planted = compile_seccomp({"defaultAction": "SCMP_ACT_ALLOW"})
    on_disk.write_bytes(planted)
    on_disk.chmod(0o666)
    clear_memory_cache()
    assert compile_seccomp(config, cache_dir=cache) == first  # recompiled, and the cache entry rewritten
    assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600 and on_disk.read_bytes() == first
    clear_memory_cache()


def test_every_known_syscall_of_the_default_profile_compiles(caplog: pytest.LogCaptureFixture) -> None:
    config = default_seccomp(capabilities=["CAP_SYS_ADMIN", *DEFAULT_CAPABILITIES])
    names = sorted({n for rule in config["syscalls"] for n in rule["names"]})
    known = [n for n in names if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n) != -1]
    unknown = sorted(set(names) - set(known))
    assert len(known) > 300
    for name in known:
        bpf = compile_seccomp(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ALL_X86,
                "syscalls": [{"names": [name], "action": "SCMP_ACT_ERRNO"}],
            }
        )
        assert len(bpf) > 8 and len(bpf) % 8 == 0, name
    # Names this libseccomp does not know are skipped with a debug line, like runc.
    clear_memory_cache()
    with caplog.at_level(logging.DEBUG, logger="engine.runtime.seccomp"):
        compile_seccomp(config)
    messages = [r.getMessage() for r in caplog.records]
    skipped = sorted({m.split("'")[1] for m in messages if "unknown to libseccomp" in m})
    assert skipped == unknown


def test_docker_profile_conversion_follows_caps_arch_and_kernel() -> None:
    def rules_for(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
        return [r for r in config["syscalls"] if name in r["names"]]

    default = default_seccomp(arch="x86_64", kernel=(6, 1))
    assert default["defaultAction"] == "SCMP_ACT_ERRNO" and default["defaultErrnoRet"] == 1
    assert default["architectures"] == ALL_X86
    assert rules_for(default, "mount") == []  # only with CAP_SYS_ADMIN
    assert rules_for(default, "clone3") == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    assert [r["args"][0]["op"] for r in rules_for(default, "clone")] == ["SCMP_CMP_MASKED_EQ"]
    assert rules_for(default, "arch_prctl") and not rules_for(default, "set_tls")
    assert rules_for(default, "ptrace")  # minKernel 4.8 met

    admin = default_seccomp([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], arch="x86_64", kernel=(6, 1))
    assert rules_for(admin, "mount")[0]["action"] == "SCMP_ACT_ALLOW"
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in rules_for(admin, "clone3"))
    assert all("args" not in r for r in rules_for(admin, "clone"))

    old_arm = default_seccomp(arch="aarch64", kernel=(4, 4))
    assert old_arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert rules_for(old_arm, "set_tls") and not rules_for(old_arm, "arch_prctl")
    assert not rules_for(old_arm, "ptrace")  # kernel older than minKernel 4.8

    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
            {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_KILL", "CAP_BPF"]}},
            {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_KILL", "CAP_BPF"]}},
        ],
    }
    assert [r["names"] for r in docker_profile_to_oci(profile, ["CAP_KILL"], kernel=(4, 19))["syscalls"]] == [["a"]]
    assert docker_profile_to_oci(profile, ["KILL", "bpf"], kernel=(5, 0))["syscalls"][0]["names"] == ["c"]


def test_features_list_what_compile_accepts() -> None:
    feats = seccomp_features()
    for action in feats["actions"]:
        errno_ret = {"errnoRet": 1} if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE") else {}
        compile_seccomp(
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": action, **errno_ret}]}
        )
    for op in feats["operators"]:
        rule = {"names": ["acct"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": op}]}
        compile_seccomp({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
    big_endian = {"MIPS", "MIPS64", "MIPS64N32", "PARISC", "PARISC64", "PPC", "PPC64", "S390", "S390X"}
    for arch in feats["archs"]:
        config = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}
        if arch.removeprefix("SCMP_ARCH_") in big_endian:  # libseccomp cannot mix endianness
            with pytest.raises(SeccompError, match="cannot be filtered on this host"):
                compile_seccomp(config)
        else:
            compile_seccomp(config)
    assert "SCMP_ACT_NOTIFY" not in feats["actions"]


def test_syscalls_newer_than_the_profile_get_enosys_not_eperm(default_bpf: bytes) -> None:
    # The profile names futex_requeue (456) and, with this libseccomp, nothing
    # higher that it can resolve; mseal (462, in the profile but unknown to
    # libseccomp 2.5.4) and never-assigned numbers must answer ENOSYS so libc
    # falls back, as under runc (patchbpf).
    profile_numbers = {
        pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, n)
        for rule in default_seccomp()["syscalls"]
        for n in rule["names"]
    }
    newest = max(profile_numbers)

    def probes() -> dict[str, int | str]:
        return {
            "newest_known": probe(newest, 0, 0, 0, 0, 0, 0),
            "mseal_len0": probe(462, 0, 0, 0),
            "unassigned": probe(1000),
        }

    control, _ = run_in_child(probes)
    filtered, _ = run_in_child(_under_default(default_bpf, probes))
    assert filtered["ok"]["mseal_len0"] == filtered["ok"]["unassigned"] == "ENOSYS"
    # Allowed: the kernel answers, as it does unfiltered (ENOSYS itself on a kernel older than
    # the syscall, e.g. 6.1 in the v2 QEMU guest).
    assert filtered["ok"]["newest_known"] == control["ok"]["newest_known"] != "EPERM"
    if control["ok"]["mseal_len0"] == "ok":  # this kernel has mseal: only the filter says ENOSYS
        assert filtered["ok"]["mseal_len0"] == "ENOSYS"


def test_trap_raises_a_catchable_sigsys_and_trace_without_tracer_is_enosys() -> None:
    bpf = compile_seccomp(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["uname"], "action": "SCMP_ACT_TRAP"},
                {"names": ["getcwd"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            ],
        }
    )

    def child() -> dict[str, Any]:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        caught: list[int] = []
        signal.signal(signal.SIGSYS, lambda signum, frame: caught.append(signum))
        set_no_new_privs()
        load_seccomp(bpf)
        try:
            os.uname()
        except OSError:
            pass  # the syscall did not run: whatever it returns, the signal is what matters
        trace: int | str = "ok"
        try:
            os.getcwd()
        except OSError as exc:
            trace = errno.errorcode[exc.errno or 0]
        return {"caught": caught, "trace": trace}

    result, status = run_in_child(child)
    assert os.waitstatus_to_exitcode(status) == 0
    # seccomp(2): SECCOMP_RET_TRACE with no tracer attached fails the call with ENOSYS.
    assert result == {"ok": {"caught": [signal.SIGSYS], "trace": "ENOSYS"}}


@pytest.mark.parametrize("caps", [DEFAULT_CAPABILITIES, (*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")])
def test_converted_profile_is_valid_runtime_spec_seccomp(caps: tuple[str, ...]) -> None:
    from .oci_schemas import validate

    validate({"ociVersion": "1.3.0", "linux": {"seccomp": default_seccomp(list(caps))}}, "config-schema.json")
    with pytest.raises(Exception, match="SCMP_ACT_MAYBE"):  # the schema check itself can fail
        validate(
            {"ociVersion": "1.3.0", "linux": {"seccomp": {"defaultAction": "SCMP_ACT_MAYBE"}}}, "config-schema.json"
        )
    features = seccomp_features()
    validate(
        {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": {"seccomp": features}}, "features-schema.json"
    )


def test_without_no_new_privs_the_filter_goes_in_first_and_privileges_drop_under_it(default_bpf: bytes) -> None:
    """runc's order when noNewPrivileges is false: load while CAP_SYS_ADMIN is held, then user and caps."""

    def become_user() -> None:
        os.setgroups([])
        os.setresgid(1000, 1000, 1000)
        os.setresuid(1000, 1000, 1000)

    def child() -> dict[str, str]:
        load_seccomp(default_bpf)  # no no_new_privs: allowed because this root child has CAP_SYS_ADMIN
        names = list(DEFAULT_CAPABILITIES)
        apply_capabilities({"bounding": names, "effective": names, "permitted": names}, change_user=become_user)
        lines = Path("/proc/self/status").read_text().splitlines()
        status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
        return {k: status[k].strip() for k in ("Uid", "NoNewPrivs", "Seccomp", "CapEff")}

    result, _ = run_in_child(child)
    assert result == {
        "ok": {"Uid": "1000\t1000\t1000\t1000", "NoNewPrivs": "0", "Seccomp": "2", "CapEff": "00000000a80425fb"}
    }


def test_a_cached_program_is_found_without_the_compiler(tmp_path: Any) -> None:
    """`berth-runtime run` of a profile run before, and the init that loads it, never import pyseccomp (~20 ms)."""
    config = default_seccomp()
    cache = tmp_path / "cache"
    clear_memory_cache()
    compiled = compile_seccomp(config, cache_dir=cache)
    clear_memory_cache()
    code = (
        "import json, sys\n"
        "from engine.runtime.seccomp_bpf import program_for\n"
        "config, cache = json.loads(sys.argv[1]), sys.argv[2]\n"
        "program = program_for(config, cache)\n"
        "sys.stdout.buffer.write(program if 'pyseccomp' not in sys.modules else b'imported pyseccomp')\n"
    )
    warm = subprocess.run([sys.executable, "-c", code, json.dumps(config), str(cache)], capture_output=True,
                          timeout=60, check=True)
    assert warm.stdout == compiled, warm.stderr
    cold = subprocess.run([sys.executable, "-c", code, json.dumps(config), str(tmp_path / "empty")],
                          capture_output=True, timeout=60, check=True)
    assert cold.stdout == b"imported pyseccomp"  # a miss compiles, so the check above can fail

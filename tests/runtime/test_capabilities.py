"""Capabilities: names, masks, and the sets a forked child really ends up with.

Capabilities are only ever changed in children made by os.fork() that report
over a pipe and leave with os._exit; the pytest process keeps its own.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from engine.runtime import syscalls
from engine.runtime.capabilities import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    CapabilityError,
    apply_capabilities,
    capability_mask,
    capability_name,
    capability_sets,
    names_from_mask,
    parse_capability,
    read_status_capabilities,
)
from engine.runtime.errors import InvalidSpec

from .forked import run_in_child

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

DOCKER_DEFAULT_MASK = 0x00000000A80425FB  # CapEff of `docker run` on this host (MACHINE-NOTES)
UNPRIVILEGED_UID = 1000
CLONE_NEWUTS = 0x04000000


def bind_low_port() -> str:
    """Bind 127.0.0.1:1 (below ip_unprivileged_port_start): needs CAP_NET_BIND_SERVICE."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 1))
        except OSError as exc:
            return errno.errorcode[exc.errno or 0]
    return "ok"


def exec_and_read_status() -> dict[str, int]:
    """Exec `cat /proc/self/status` from the current (child) process; parse the Cap* lines it prints."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.dup2(w, 1)
            os.execve("/bin/cat", ["cat", "/proc/self/status"], {})
        finally:
            os._exit(127)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        text = inp.read().decode()
    os.waitpid(pid, 0)
    caps = {}
    for line in text.splitlines():
        if line.startswith("Cap"):
            key, _, value = line.partition(":")
            caps[key] = int(value.strip(), 16)
    return caps


def all_sets(names: list[str]) -> dict[str, list[str]]:
    return {"bounding": names, "effective": names, "permitted": names, "inheritable": names}


def test_names_and_numbers_round_trip() -> None:
    assert len(CAPABILITIES) == 41
    assert parse_capability("CAP_CHOWN") == 0
    assert parse_capability("CAP_SYS_ADMIN") == 21
    assert parse_capability("CAP_CHECKPOINT_RESTORE") == 40
    assert parse_capability("net_raw") == parse_capability("CAP_NET_RAW") == 13  # docker --cap-add spelling
    assert all(parse_capability(capability_name(n)) == n for n in range(41))
    assert capability_mask(DEFAULT_CAPABILITIES) == DOCKER_DEFAULT_MASK
    assert set(names_from_mask(DOCKER_DEFAULT_MASK)) == set(DEFAULT_CAPABILITIES)


def test_unknown_capability_is_a_clear_error() -> None:
    with pytest.raises(CapabilityError, match="unknown capability 'CAP_FLY'"):
        parse_capability("CAP_FLY")
    with pytest.raises(InvalidSpec, match="unknown capability 'CAP_FLY'"):  # maps to a 400 / runc-like error
        capability_sets({"bounding": ["CAP_CHOWN", "CAP_FLY"]})
    with pytest.raises(CapabilityError, match="unknown capability set"):
        capability_sets({"bounded": ["CAP_CHOWN"]})
    # Refused before anything is applied: a child that tries keeps its full set.
    result, _ = run_in_child(lambda: apply_capabilities(all_sets(["CAP_CHOWN", "CAP_FLY"])))
    assert "CapabilityError" in result["error"]


def test_capabilities_newer_than_the_kernel_are_skipped() -> None:
    sets = capability_sets(all_sets(["CAP_CHOWN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]), last_cap=38)
    assert sets.bounding == sets.effective == 1 << 0  # CAP_BPF (39) and 40 ignored with a warning


def test_docker_default_set_gives_dockers_masks() -> None:
    def child() -> dict[str, Any]:
        apply_capabilities(all_sets(list(DEFAULT_CAPABILITIES)))
        return {"before_exec": read_status_capabilities(), "after_exec": exec_and_read_status()}

    result, status = run_in_child(child)
    assert os.waitstatus_to_exitcode(status) == 0, result
    for when in ("before_exec", "after_exec"):
        caps = result["ok"][when]
        assert (caps["CapEff"], caps["CapPrm"], caps["CapBnd"]) == (DOCKER_DEFAULT_MASK,) * 3, when
        assert caps["CapAmb"] == 0


def test_dropped_net_raw_forbids_raw_sockets() -> None:
    def raw_socket() -> str:
        try:
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        except OSError as exc:
            return errno.errorcode[exc.errno or 0]
        return "ok"

    def child(names: list[str]) -> Callable[[], str]:
        def run() -> str:
            apply_capabilities(all_sets(names))
            return raw_socket()

        return run

    without_raw = [c for c in DEFAULT_CAPABILITIES if c != "CAP_NET_RAW"]
    assert run_in_child(child(list(DEFAULT_CAPABILITIES)))[0] == {"ok": "ok"}
    assert run_in_child(child(without_raw))[0] == {"ok": "EPERM"}


def test_without_sys_admin_sethostname_in_own_uts_namespace_fails() -> None:
    def child(names: list[str]) -> Callable[[], str]:
        def run() -> str:
            syscalls.unshare(CLONE_NEWUTS)  # while root: only this child's hostname is at stake
            apply_capabilities(all_sets(names))
            try:
                syscalls.sethostname("berth-cap-test")
            except OSError as exc:
                return errno.errorcode[exc.errno or 0]
            return os.uname().nodename

        return run

    assert run_in_child(child(list(DEFAULT_CAPABILITIES)))[0] == {"ok": "EPERM"}
    assert run_in_child(child([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]))[0] == {"ok": "berth-cap-test"}


def test_setuid_with_keepcaps_then_ambient_caps_survive_exec() -> None:
    """The documented order: bounding drop, keepcaps + setgid/setuid, capset, ambient, exec."""
    kept = ["CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_KILL"]
    ambient = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]

    def become_user() -> None:
        os.setgroups([])
        os.setresgid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        os.setresuid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, UNPRIVILEGED_UID)

    def child() -> dict[str, Any]:
        apply_capabilities({**all_sets(kept), "ambient": ambient}, change_user=become_user)
        return {
            "uid": os.getuid(),
            "before_exec": read_status_capabilities(),
            "bind_low_port": bind_low_port(),
            "after_exec": exec_and_read_status(),
        }

    result, status = run_in_child(child)
    assert os.waitstatus_to_exitcode(status) == 0, result
    out = result["ok"]
    assert out["uid"] == UNPRIVILEGED_UID
    assert out["before_exec"]["CapEff"] == capability_mask(kept)
    assert out["before_exec"]["CapAmb"] == capability_mask(ambient)
    assert out["bind_low_port"] == "ok"
    # A non-root exec keeps exactly the ambient set (capabilities(7)).
    after = out["after_exec"]
    assert after["CapEff"] == after["CapPrm"] == after["CapAmb"] == capability_mask(ambient)
    assert after["CapBnd"] == capability_mask(kept)


def test_setuid_without_ambient_leaves_nothing_after_exec() -> None:
    def child() -> dict[str, Any]:
        apply_capabilities(
            all_sets(["CAP_CHOWN"]),  # no CAP_NET_BIND_SERVICE
            change_user=lambda: os.setresuid(UNPRIVILEGED_UID, UNPRIVILEGED_UID, UNPRIVILEGED_UID),
        )
        return {"bind_low_port": bind_low_port(), "after_exec": exec_and_read_status()}

    result, _ = run_in_child(child)
    assert result["ok"]["bind_low_port"] == "EACCES"
    assert result["ok"]["after_exec"]["CapEff"] == result["ok"]["after_exec"]["CapPrm"] == 0


def test_ambient_outside_inheritable_is_skipped_like_runc() -> None:
    # `runc spec` lists ambient capabilities without an inheritable set; runc
    # starts such containers with CapAmb 0 instead of failing.
    def child() -> dict[str, int]:
        apply_capabilities(
            {**all_sets(["CAP_CHOWN", "CAP_KILL"]), "inheritable": ["CAP_KILL"], "ambient": ["CAP_CHOWN", "CAP_KILL"]}
        )
        return read_status_capabilities()

    result, _ = run_in_child(child)
    assert result["ok"]["CapAmb"] == capability_mask(["CAP_KILL"])

"""`run`/`create` flags of the issue's list that map onto the create body: -p/-P/--expose, --mount,
--network-alias, --health-*; berth and the real docker CLI create containers with the same flags on one berthd, and the
engine stores the same thing (docker inspect agrees)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Tools

pytestmark = pytest.mark.needs_root


def _created_alike(tools: Tools, name: str, *flags: str) -> dict[str, object]:
    """Create `<name>-b` with berth and `<name>-d` with docker; what the flags set must be stored alike
    (the rest of the body differs by design: docker sends empty fields berth leaves out)."""
    found = []
    for tool in ("berth", "docker"):
        tools.ok(tool, "create", "--name", f"{name}-{tool[0]}", *flags, "busybox", "sleep", "60")
        found.append(json.loads(tools.ok("docker", "inspect", f"{name}-{tool[0]}"))[0])
    ours, theirs = found
    assert ours["Config"].get("Healthcheck") == theirs["Config"].get("Healthcheck")
    assert ours["HostConfig"].get("Mounts") == theirs["HostConfig"].get("Mounts")
    for key in ("PortBindings", "PublishAllPorts"):  # docker sends `{}`/false where berth leaves them out
        assert (ours["HostConfig"].get(key) or None) == (theirs["HostConfig"].get(key) or None), key
    assert (ours["Config"].get("ExposedPorts") or None) == (theirs["Config"].get("ExposedPorts") or None)
    assert [dict(m, Name="") for m in ours["Mounts"]] == [dict(m, Name="") for m in theirs["Mounts"]] or \
        all(m.get("Name") for m in ours["Mounts"] if m["Type"] == "volume")  # anonymous volumes: own names
    networks = [{net: sorted(a for a in (e.get("Aliases") or []) if not a.startswith(doc["Id"][:12]))
                 for net, e in (doc["NetworkSettings"].get("Networks") or {}).items()} for doc in found]
    assert networks[0] == networks[1]
    return dict(ours)


def test_mount_flags_agree_with_docker(tools: Tools, busybox: str, tmp_path: Path) -> None:
    tools.ok("docker", "volume", "create", "ro-vol")
    tools.ok("docker", "volume", "create", "anon-vol")
    doc = _created_alike(tools, "mnt", "--mount", f"type=bind,source={tmp_path},target=/host,readonly",
                         "--mount", "type=volume,src=ro-vol,dst=/data,volume-nocopy",
                         "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m,tmpfs-mode=1770",
                         "--mount", "source=anon-vol,target=/anon")
    mounts = {m["Target"]: m for m in doc["HostConfig"]["Mounts"]}  # type: ignore[index]
    assert mounts["/host"] == {"Type": "bind", "Source": str(tmp_path), "Target": "/host", "ReadOnly": True}
    assert mounts["/scratch"]["TmpfsOptions"] == {"SizeBytes": 1048576, "Mode": 0o1770}
    assert mounts["/data"]["VolumeOptions"] == {"NoCopy": True, "DriverConfig": {}}


def test_health_flags_agree_with_docker(tools: Tools, busybox: str) -> None:
    doc = _created_alike(tools, "hc", "--health-cmd", "test -e /tmp", "--health-interval", "1m30s",
                         "--health-timeout", "2s", "--health-retries", "4", "--health-start-period", "500ms",
                         "--health-start-interval", "1s")
    assert doc["Config"]["Healthcheck"] == {  # type: ignore[index]
        "Test": ["CMD-SHELL", "test -e /tmp"], "Interval": 90_000_000_000, "Timeout": 2_000_000_000,
        "StartPeriod": 500_000_000, "StartInterval": 1_000_000_000, "Retries": 4}
    none = _created_alike(tools, "nohc", "--no-healthcheck")
    assert none["Config"]["Healthcheck"] == {"Test": ["NONE"]}  # type: ignore[index]
    ours = tools.berth("create", "--no-healthcheck", "--health-cmd", "true", busybox)
    theirs = tools.docker("create", "--no-healthcheck", "--health-cmd", "true", busybox)
    assert ours.returncode == theirs.returncode == 125
    assert "--no-healthcheck conflicts with --health-* options" in ours.stderr
    assert "--no-healthcheck conflicts with --health-* options" in theirs.stderr


def test_network_alias_agrees_with_docker(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "network", "create", "alias-net")
    doc = _created_alike(tools, "al", "--network", "alias-net", "--network-alias", "web", "--net-alias", "www")
    aliases = doc["NetworkSettings"]["Networks"]["alias-net"]["Aliases"]  # type: ignore[index]
    assert set(aliases) >= {"web", "www"}


def test_publish_flags_agree_with_docker(tools: Tools, busybox: str) -> None:
    doc = _created_alike(tools, "pub", "-p", "8080:80", "-p", "127.0.0.1::53/udp", "-p", "9000-9001:90-91",
                         "-p", "443", "-p", "0.0.0.0:8443:443", "--publish", "target=70,published=7000",
                         "--expose", "3000-3001", "--expose", "5000/udp", "-P")
    assert doc["HostConfig"]["PortBindings"]["91/tcp"] == [{"HostIp": "", "HostPort": "9001"}]  # type: ignore[index]
    for bad in ("80:8o", "1.2.3:80:80", "70000", "80/xyz", "8000-8002:80-81"):
        ours, theirs = tools.berth("create", "-p", bad, busybox), tools.docker("create", "-p", bad, busybox)
        assert ours.returncode == 125 and theirs.returncode != 0, bad
        assert ours.stderr.count("\n") == 1 and "Traceback" not in ours.stderr, bad
    # What berthd itself refuses (a host port range for one port, IPv6): the same answer to both tools.
    for spec in ("7000-7010:70", "[::1]:8443:443"):
        ours, theirs = tools.berth("create", "-p", spec, busybox), tools.docker("create", "-p", spec, busybox)
        assert ours.returncode == 125 and ours.stderr.startswith("Error response from daemon: "), spec
        assert ours.stderr in theirs.stderr, spec


def test_published_port_is_reported_alike(tools: Tools, busybox: str) -> None:
    tools.ok("berth", "run", "-d", "--name", "pub-run", "-p", "127.0.0.1::8080", busybox, "sleep", "60")
    ours, theirs = tools.berth("port", "pub-run"), tools.docker("port", "pub-run")
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
    assert ours.stdout.startswith("8080/tcp -> 127.0.0.1:")


def test_host_config_flags_agree_with_docker(tools: Tools, busybox: str, tmp_path: Path) -> None:
    from engine.cli.container_options import PASSTHROUGH

    (tmp_path / "labels").write_text("# a comment\nfrom.file=yes\nteam=ops\n")
    flags = ["--add-host", "db.example:192.0.2.7", "--dns", "192.0.2.53", "--dns-option", "ndots:2",
             "--dns-search", "example.org", "--group-add", "10", "--security-opt", "no-new-privileges",
             "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512", "--sysctl", "net.ipv4.ip_forward=1",
             "--log-driver", "json-file", "--log-opt", "max-size=1m", "--shm-size", "64m",
             "--memory-reservation", "32m", "-c", "512", "--cpu-period", "100000", "--cpu-quota", "50000",
             "--oom-score-adj", "100", "--uts", "host", "--domainname", "example.org", "--annotation", "a=b",
             "--label-file", str(tmp_path / "labels"), "--label", "team=dev", "--oom-kill-disable",
             "--device-cgroup-rule", "c 1:3 r", "--cgroupns", "private"]
    found = []
    for tool in ("berth", "docker"):
        tools.ok(tool, "create", "--name", f"hcf-{tool[0]}", *flags, busybox, "true")
        found.append(json.loads(tools.ok("docker", "inspect", f"hcf-{tool[0]}"))[0])
    ours, theirs = found
    given = {key for names, key, _ in PASSTHROUGH if set(names) & set(flags)} | {"OomKillDisable"}
    for key in given:  # (docker also sends defaults of its own for the others, e.g. MemorySwappiness -1)
        assert (ours["HostConfig"].get(key) or None) == (theirs["HostConfig"].get(key) or None), key
    assert ours["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                                             {"Name": "nproc", "Soft": 512, "Hard": 512}]
    for key in ("Domainname", "Labels"):
        assert ours["Config"][key] == theirs["Config"][key], key
    assert ours["Config"]["Labels"] == {"from.file": "yes", "team": "dev"}


def test_cidfile_like_docker(tools: Tools, busybox: str, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    made = tools.ok("berth", "create", "--cidfile", str(cidfile), busybox, "true").strip()
    assert cidfile.read_text() == made
    ours = tools.berth("create", "--cidfile", str(cidfile), busybox, "true")
    theirs = tools.docker("create", "--cidfile", str(cidfile), busybox, "true")
    assert (ours.returncode, ours.stderr.strip()) == (theirs.returncode, theirs.stderr.strip())

"""Container filesystem endpoints through berthd: `docker cp` both ways, `docker export`, `docker diff`,
and hostile tars that must not reach the host."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import RunningDaemon, running_berthd
from tests.api.test_containers import docker_cli
from tests.fixtures.registry import seed_images_dir

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def engine(run_tag: str) -> Iterator[RunningDaemon]:
    """A berthd with busybox loaded; its containers and their anonymous volumes go at the end."""
    archive = seed_images_dir() / "busybox.tar"
    if not archive.exists():
        pytest.skip("seed images missing: run `make images`")
    with running_berthd(run_tag) as daemon:
        ok(docker_cli(daemon, "load", "-q", "-i", str(archive)))
        try:
            yield daemon
        finally:
            docker_cli(daemon, "rm", "-f", "-v", *docker_cli(daemon, "ps", "-aq").stdout.split())


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stderr
    return out.stdout


def run_detached(engine: RunningDaemon, name: str, *args: str) -> None:
    ok(docker_cli(engine, "run", "-d", "--name", name, *args, "busybox", "sleep", "300"))


def api(engine: RunningDaemon, method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP/1.1 request on the daemon's unix socket (the response read to its end)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(engine.socket))
        head = [f"{method} {path} HTTP/1.1", "Host: berth", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    raw_head, _, payload = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if hdrs.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    return status, hdrs, payload


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(name: str, data: bytes | None = None, *, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[
        tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if data is not None:
        info.size = len(data)
    return info, data


# ---------------------------------------------------------------- docker cp


def test_cp_a_file_both_ways_with_a_running_container(engine: RunningDaemon, tmp_path: Path) -> None:
    run_detached(engine, "cp-run")
    src = tmp_path / "hello.txt"
    src.write_text("hello from the host\n")
    ok(docker_cli(engine, "cp", str(src), "cp-run:/tmp/hello.txt"))
    assert ok(docker_cli(engine, "exec", "cp-run", "cat", "/tmp/hello.txt")) == "hello from the host\n"
    ok(docker_cli(engine, "exec", "cp-run", "sh", "-c", "echo made inside > /tmp/inside.txt"))
    ok(docker_cli(engine, "cp", "cp-run:/tmp/inside.txt", str(tmp_path / "back.txt")))
    assert (tmp_path / "back.txt").read_text() == "made inside\n"
    events = ok(docker_cli(engine, "events", "--since", "0", "--until", f"{time.time():.3f}",
                           "--filter", "container=cp-run",
                           "--format", "{{.Action}}")).split()
    assert "extract-to-dir" in events and "archive-path" in events  # dockerd's events for cp


def test_cp_a_directory_both_ways(engine: RunningDaemon, tmp_path: Path) -> None:
    run_detached(engine, "cp-dir")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    (tree / "sub" / "b.txt").write_text("b\n")
    os.symlink("a.txt", tree / "link")
    # /srv does not exist: the directory is copied *as* /srv; /tmp exists: it lands in /tmp/tree.
    ok(docker_cli(engine, "cp", str(tree), "cp-dir:/srv"))
    ok(docker_cli(engine, "cp", str(tree), "cp-dir:/tmp"))
    listing = ok(docker_cli(engine, "exec", "cp-dir", "sh", "-c",
                            "cd /srv && find . | sort && readlink link && cat /tmp/tree/sub/b.txt"))
    assert listing.split() == [".", "./a.txt", "./link", "./sub", "./sub/b.txt", "a.txt", "b"]
    ok(docker_cli(engine, "cp", "cp-dir:/etc", str(tmp_path / "etc-copy")))
    assert "root:x:0:0" in (tmp_path / "etc-copy" / "passwd").read_text()
    # `dir/.` copies the content, not the directory.
    ok(docker_cli(engine, "cp", "cp-dir:/srv/.", str(tmp_path / "flat")))
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["a.txt", "link", "sub"]


def test_cp_into_and_out_of_a_stopped_container_leaves_no_mount(engine: RunningDaemon, tmp_path: Path) -> None:
    ok(docker_cli(engine, "create", "--name", "cp-stopped", "busybox", "cat", "/data/in.txt"))
    src = tmp_path / "in.txt"
    src.write_text("copied while stopped\n")
    mounts_before = _mounts_under(engine.root)
    ok(docker_cli(engine, "cp", str(src), "cp-stopped:/in.txt"))
    ok(docker_cli(engine, "cp", "cp-stopped:/in.txt", str(tmp_path / "out.txt")))
    assert (tmp_path / "out.txt").read_text() == "copied while stopped\n"
    assert _mounts_under(engine.root) == mounts_before
    assert not any("fsview" in m for m in mounts_before)
    ok(docker_cli(engine, "rm", "cp-stopped"))


def _mounts_under(root: Path) -> list[str]:
    points = (line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())
    return sorted(p for p in points if p.startswith(str(root)))


def test_cp_reads_and_writes_a_volume_path(engine: RunningDaemon, tmp_path: Path) -> None:
    ok(docker_cli(engine, "volume", "create", "cpvol"))
    run_detached(engine, "cp-vol", "-v", "cpvol:/data")
    src = tmp_path / "v.txt"
    src.write_text("into the volume\n")
    ok(docker_cli(engine, "cp", str(src), "cp-vol:/data/v.txt"))
    ok(docker_cli(engine, "exec", "cp-vol", "sh", "-c", "echo from inside > /data/w.txt"))
    ok(docker_cli(engine, "cp", "cp-vol:/data/w.txt", str(tmp_path / "w.txt")))
    assert (tmp_path / "w.txt").read_text() == "from inside\n"
    ok(docker_cli(engine, "rm", "-f", "cp-vol"))
    # The file went into the volume, not the container's layer: a new container sees it.
    out = ok(docker_cli(engine, "run", "--rm", "-v", "cpvol:/v", "busybox", "cat", "/v/v.txt"))
    assert out == "into the volume\n"
    # A stopped container's volume path is the volume too.
    ok(docker_cli(engine, "create", "--name", "cp-vol-stopped", "-v", "cpvol:/data", "busybox", "true"))
    ok(docker_cli(engine, "cp", "cp-vol-stopped:/data/w.txt", str(tmp_path / "w2.txt")))
    assert (tmp_path / "w2.txt").read_text() == "from inside\n"
    ok(docker_cli(engine, "rm", "cp-vol-stopped"))


def test_cp_errors_are_dockers(engine: RunningDaemon, tmp_path: Path) -> None:
    run_detached(engine, "cp-err")
    missing = docker_cli(engine, "cp", "cp-err:/no/such/file", str(tmp_path / "x"))
    assert missing.returncode != 0
    assert "Could not find the file /no/such/file in container cp-err" in missing.stderr
    unknown = docker_cli(engine, "cp", "no-such-container:/etc/passwd", str(tmp_path / "x"))
    assert unknown.returncode != 0 and "No such container" in unknown.stderr
    ok(docker_cli(engine, "run", "-d", "--name", "cp-ro", "--read-only", "busybox", "sleep", "300"))
    src = tmp_path / "f"
    src.write_text("x")
    ro = docker_cli(engine, "cp", str(src), "cp-ro:/tmp/f")
    assert ro.returncode != 0 and "marked read-only" in ro.stderr


# ---------------------------------------------------------------- the API directly


def test_head_archive_returns_the_path_stat_header(engine: RunningDaemon) -> None:
    run_detached(engine, "stat-c")
    status, headers, _ = api(engine, "HEAD", "/v1.51/containers/stat-c/archive?path=/etc/passwd")
    assert status == 200
    stat = json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))
    assert stat["name"] == "passwd" and stat["size"] > 0 and stat["linkTarget"] == ""
    assert stat["mode"] & 0o777 == 0o644 and not stat["mode"] & (1 << 31)
    status, headers, _ = api(engine, "HEAD", "/containers/stat-c/archive?path=/etc")
    assert json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))["mode"] & (1 << 31)
    ok(docker_cli(engine, "exec", "stat-c", "ln", "-s", "/etc/passwd", "/tmp/pw-link"))
    status, headers, _ = api(engine, "HEAD", "/containers/stat-c/archive?path=/tmp/pw-link")
    stat = json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))
    assert stat["linkTarget"] == "/etc/passwd" and stat["mode"] & (1 << 27)


def test_archive_bad_requests(engine: RunningDaemon) -> None:
    run_detached(engine, "bad-c")
    status, _, body = api(engine, "GET", "/containers/bad-c/archive?path=/nope")
    assert status == 404
    assert json.loads(body)["message"] == "Could not find the file /nope in container bad-c"
    status, _, body = api(engine, "GET", "/containers/bad-c/archive")
    assert status == 400 and json.loads(body)["message"] == "bad parameter: pathcannot be empty"
    status, _, body = api(engine, "GET", "/containers/not-there/archive?path=/")
    assert status == 404 and json.loads(body)["message"] == "No such container: not-there"
    status, _, body = api(engine, "PUT", "/containers/bad-c/archive?path=/etc/passwd",
                          tar_of(entry("x", b"x")))
    assert status == 400 and "not a directory" in json.loads(body)["message"]
    status, _, body = api(engine, "PUT", "/containers/bad-c/archive?path=/tmp", b"this is not a tar" * 100)
    assert status == 400
    status, _, _ = api(engine, "GET", "/containers/not-there/export")
    assert status == 404
    status, _, _ = api(engine, "GET", "/containers/not-there/changes")
    assert status == 404


def test_hostile_tars_never_write_outside_the_container(engine: RunningDaemon, tmp_path: Path) -> None:
    run_detached(engine, "evil-c")
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched\n")
    attacks = {
        "dotdot": tar_of(entry(f"../../../../../../../../..{canary}", b"pwned\n")),
        "absolute symlink then write": tar_of(entry("esc", kind=tarfile.SYMTYPE, link="/"),
                                              entry(f"esc{canary}", b"pwned\n")),
        "relative symlink out": tar_of(entry("rel", kind=tarfile.SYMTYPE, link="../../../../../../../.."),
                                       entry(f"rel{canary}", b"pwned\n")),
        "hardlink to host file": tar_of(entry("hl", kind=tarfile.LNKTYPE, link=str(canary))),
        "hardlink climbing out": tar_of(entry("hl2", kind=tarfile.LNKTYPE, link=f"../../../../../..{canary}")),
    }
    for what, body in attacks.items():
        status, _, reply = api(engine, "PUT", "/containers/evil-c/archive?path=/tmp", body)
        assert canary.read_text() == "untouched\n", what
        assert os.stat(canary).st_nlink == 1, what
        assert status in (200, 400), (what, status, reply)
    # The absolute symlink resolved inside the container: the write landed in the container's own tree.
    inside = docker_cli(engine, "exec", "evil-c", "cat", f"{canary}")
    assert inside.returncode == 0 and inside.stdout == "pwned\n"
    # A symlink the container itself planted (pointing at the host path) is followed inside it too.
    ok(docker_cli(engine, "exec", "evil-c", "ln", "-s", str(canary.parent), "/tmp/planted"))
    # (the path ends in the link: dockerd follows a last element that is a link to a directory)
    status, _, body = api(engine, "PUT", "/containers/evil-c/archive?path=/tmp/planted",
                          tar_of(entry(canary.name, b"pwned again\n")))
    assert canary.read_text() == "untouched\n"
    assert status == 200, body
    assert ok(docker_cli(engine, "exec", "evil-c", "cat", f"{canary}")) == "pwned again\n"
    # Reading through a symlink to a host path reads the container's file, never the host's.
    ok(docker_cli(engine, "exec", "evil-c", "ln", "-s", "/etc/shadow", "/tmp/shadow-link"))
    status, _, data = api(engine, "GET", "/containers/evil-c/archive?path=/tmp/shadow-link/")
    host_shadow = Path("/etc/shadow").read_bytes()
    assert host_shadow not in data
    # And the daemon still serves.
    assert api(engine, "GET", "/_ping")[0] == 200


# ---------------------------------------------------------------- export and diff


def test_export_lists_the_rootfs(engine: RunningDaemon, tmp_path: Path) -> None:
    ok(docker_cli(engine, "volume", "create", "exportvol"))
    run_detached(engine, "exp-c", "-v", "exportvol:/vol")
    ok(docker_cli(engine, "exec", "exp-c", "sh", "-c", "echo hi > /made.txt; echo v > /vol/in-volume.txt"))
    out = tmp_path / "exp.tar"
    ok(docker_cli(engine, "export", "-o", str(out), "exp-c"))
    names = subprocess.run(["tar", "tf", str(out)], capture_output=True, text=True, check=True).stdout.split()
    assert "made.txt" in names and "bin/busybox" in names and "etc/passwd" in names
    assert not any(n.startswith("proc/") and n != "proc/" for n in names)
    assert "vol/in-volume.txt" not in names  # volumes are not part of the export, as with dockerd
    ok(docker_cli(engine, "stop", "-t", "0", "exp-c"))
    piped = subprocess.run("docker export exp-c | tar t", shell=True, env=engine.env(), capture_output=True,
                           text=True, timeout=60)
    assert piped.returncode == 0 and "made.txt" in piped.stdout.split()


def test_diff_shows_added_changed_and_deleted(engine: RunningDaemon) -> None:
    run_detached(engine, "diff-c")
    ok(docker_cli(engine, "exec", "diff-c", "sh", "-c",
                  "mkdir -p /newdir && echo x > /newdir/file && rm /etc/group && echo '#' >> /etc/passwd"))
    lines = ok(docker_cli(engine, "diff", "diff-c")).splitlines()
    for expected in ["A /newdir", "A /newdir/file", "C /etc", "D /etc/group", "C /etc/passwd"]:
        assert expected in lines, lines
    assert lines.index("C /etc") < lines.index("D /etc/group")
    _status, _, body = api(engine, "GET", "/containers/diff-c/changes")
    changes = json.loads(body)
    assert {"Path": "/etc/group", "Kind": 2} in changes and {"Path": "/newdir", "Kind": 1} in changes
    ok(docker_cli(engine, "stop", "-t", "0", "diff-c"))
    assert ok(docker_cli(engine, "diff", "diff-c")).splitlines() == lines


def test_daemon_serves_after_a_client_drops_an_export(engine: RunningDaemon) -> None:
    run_detached(engine, "drop-c")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(engine.socket))
        sock.sendall(b"GET /containers/drop-c/export HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    assert api(engine, "GET", "/_ping")[0] == 200
    assert api(engine, "GET", "/containers/drop-c/json")[0] == 200


def test_cp_sees_what_the_running_container_sees(engine: RunningDaemon, tmp_path: Path) -> None:
    """A tmpfs exists only in the container's mount namespace: reaching it proves cp uses the container's view."""
    ok(docker_cli(engine, "run", "-d", "--name", "cp-tmpfs", "--tmpfs", "/scratch", "busybox", "sleep", "300"))
    ok(docker_cli(engine, "exec", "cp-tmpfs", "sh", "-c", "echo in tmpfs > /scratch/t.txt"))
    ok(docker_cli(engine, "cp", "cp-tmpfs:/scratch/t.txt", str(tmp_path / "t.txt")))
    assert (tmp_path / "t.txt").read_text() == "in tmpfs\n"
    src = tmp_path / "up.txt"
    src.write_text("up\n")
    ok(docker_cli(engine, "pause", "cp-tmpfs"))
    try:
        ok(docker_cli(engine, "cp", str(src), "cp-tmpfs:/scratch/up.txt"))  # a paused container too
    finally:
        ok(docker_cli(engine, "unpause", "cp-tmpfs"))
    assert ok(docker_cli(engine, "exec", "cp-tmpfs", "cat", "/scratch/up.txt")) == "up\n"


def test_a_read_only_volume_refuses_a_copy(engine: RunningDaemon, tmp_path: Path) -> None:
    ok(docker_cli(engine, "volume", "create", "rovol"))
    run_detached(engine, "cp-rovol", "-v", "rovol:/ro:ro")
    src = tmp_path / "f"
    src.write_text("x")
    refused = docker_cli(engine, "cp", str(src), "cp-rovol:/ro/f")
    assert refused.returncode != 0 and "mounted volume is marked read-only" in refused.stderr
    ok(docker_cli(engine, "cp", str(src), "cp-rovol:/tmp/f"))  # the rest of the rootfs stays writable


def test_docker_py_get_and_put_archive(engine: RunningDaemon) -> None:
    import docker

    run_detached(engine, "cp-py")
    client = docker.DockerClient(base_url=engine.docker_host)
    try:
        container = client.containers.get("cp-py")
        assert container.put_archive("/tmp", tar_of(entry("py.txt", b"from docker-py\n")))
        chunks, stat = container.get_archive("/tmp/py.txt")
        assert stat["name"] == "py.txt" and stat["size"] == len(b"from docker-py\n")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("py.txt")
            assert member is not None and member.read() == b"from docker-py\n"
        assert {"Path": "/tmp/py.txt", "Kind": 1} in container.diff()
    finally:
        client.close()


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_cp_into_a_bind_mount_writes_the_host_directory(engine: RunningDaemon, tmp_path: Path, state: str) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    name = f"cp-bind-{state}"
    if state == "running":
        run_detached(engine, name, "-v", f"{shared}:/data")
    else:
        ok(docker_cli(engine, "create", "--name", name, "-v", f"{shared}:/data", "busybox", "true"))
    src = tmp_path / "in.txt"
    src.write_text(f"into the bind mount of a {state} container\n")
    ok(docker_cli(engine, "cp", str(src), f"{name}:/data/in.txt"))
    assert (shared / "in.txt").read_text() == f"into the bind mount of a {state} container\n"
    (shared / "from-host.txt").write_text("host side\n")
    ok(docker_cli(engine, "cp", f"{name}:/data/from-host.txt", str(tmp_path / "back.txt")))
    assert (tmp_path / "back.txt").read_text() == "host side\n"


def test_cp_on_a_container_that_starts_and_stops_meanwhile(engine: RunningDaemon) -> None:
    """Copies in and out while another client starts and stops the container over and over: each copy
    sees one rootfs (a start waits for a copy on the stopped container, which has it mounted), every
    file lands whole, and nothing stays mounted."""
    import docker
    import docker.errors

    ok(docker_cli(engine, "create", "--name", "cp-race", "busybox", "sleep", "300"))
    fsview = engine.root / "run" / "fsview"
    mounts_before = _mounts_under(engine.root)
    workers, rounds = 3, 8
    written: dict[str, bytes] = {}
    errors: list[str] = []
    copies_done = threading.Event()
    cycles = 0

    def copier(worker: int) -> None:
        client = docker.DockerClient(base_url=engine.docker_host)
        try:
            container = client.containers.get("cp-race")
            for i in range(rounds):
                name, data = f"w{worker}-{i}.bin", os.urandom(64 << 10) + f"{worker}/{i}".encode()
                try:
                    assert container.put_archive("/tmp", tar_of(entry(name, data)))
                    chunks, stat = container.get_archive(f"/tmp/{name}")
                    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
                        member = tar.extractfile(name)
                        assert member is not None and member.read() == data, f"{name} came back different"
                    assert stat["size"] == len(data)
                    written[name] = data
                except (docker.errors.APIError, AssertionError) as exc:
                    errors.append(f"copy {name}: {exc}")
        finally:
            client.close()

    def toggler() -> None:
        nonlocal cycles
        client = docker.DockerClient(base_url=engine.docker_host)
        try:
            container = client.containers.get("cp-race")
            while not copies_done.is_set():
                try:
                    container.start()
                    container.stop(timeout=0)
                    cycles += 1
                except docker.errors.APIError as exc:
                    errors.append(f"start/stop: {exc}")
                    return
        finally:
            client.close()

    flipping = threading.Thread(target=toggler)
    flipping.start()
    copying = [threading.Thread(target=copier, args=(w,)) for w in range(workers)]
    for thread in copying:
        thread.start()
    for thread in copying:
        thread.join()
    copies_done.set()
    flipping.join()
    assert not errors, errors
    assert cycles >= 1 and len(written) == workers * rounds
    # Stopped now: every file is in the rootfs as written, read back through a private mount.
    assert docker_cli(engine, "inspect", "-f", "{{.State.Status}}", "cp-race").stdout.strip() == "exited"
    client = docker.DockerClient(base_url=engine.docker_host)
    try:
        chunks, _stat = client.containers.get("cp-race").get_archive("/tmp")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            found = {m.name.removeprefix("tmp/"): tar.extractfile(m).read()  # type: ignore[union-attr]
                     for m in tar.getmembers() if m.isfile()}
    finally:
        client.close()
    assert found == written
    assert _mounts_under(engine.root) == mounts_before
    assert not fsview.exists() or not any(fsview.iterdir())
    ok(docker_cli(engine, "rm", "cp-race"))


def test_rm_waits_for_a_copy_out_of_the_stopped_container(run_tag: str) -> None:
    """`docker rm` while a copy streams from the stopped container (its snapshot mounted for the copy):
    the removal waits, the copy comes out whole, then the container goes and nothing stays mounted."""
    from tests.api.conftest import load_images, seed_archives
    from tests.api.test_containers import _wait_for

    with running_berthd(run_tag, "--debug") as daemon:  # the debug log shows each request as it arrives
        load_images(daemon, seed_archives("busybox"))
        ok(docker_cli(daemon, "create", "--name", "cp-rm", "busybox", "true"))
        # Far more than the socket and pipe buffers between the copy and us, in files it opens one by one.
        files = {f"many/f{i:03d}": os.urandom(64 << 10) for i in range(256)}
        status, _, _ = api(daemon, "PUT", "/v1.51/containers/cp-rm/archive?path=/",
                           tar_of(*(entry(name, data) for name, data in files.items())))
        assert status == 200
        mounts_before = _mounts_under(daemon.root)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(daemon.socket))
            sock.sendall(b"GET /v1.51/containers/cp-rm/archive?path=/many HTTP/1.1\r\nHost: berth\r\n"
                         b"Connection: close\r\n\r\n")
            received = sock.recv(65536)  # the headers and the start: the copy is under way, then blocked on us
            assert received.startswith(b"HTTP/1.1 200")
            remover = subprocess.Popen(["docker", "rm", "cp-rm"], env=daemon.env(), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            try:
                _wait_for(lambda: "DELETE /v1.50/containers/cp-rm" in daemon.log_text()
                          or "DELETE /v1.51/containers/cp-rm" in daemon.log_text(), "the rm to reach berthd")
                while chunk := sock.recv(1 << 20):
                    received += chunk
            finally:
                _out, err = remover.communicate(timeout=60)
        assert remover.returncode == 0, err
        _head, _, body = received.partition(b"\r\n\r\n")
        with tarfile.open(fileobj=io.BytesIO(_dechunk(body))) as tar:
            copied = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        assert copied == files
        assert docker_cli(daemon, "inspect", "cp-rm").returncode != 0
        assert _mounts_under(daemon.root) == mounts_before


@pytest.mark.parametrize("direction", ["out", "in"])
def test_a_stalled_copy_does_not_keep_start_waiting(run_tag: str, monkeypatch: pytest.MonkeyPatch,
                                                     direction: str) -> None:
    """A `docker cp` whose client stops reading (out) or sending (in) mid-copy holds the stopped
    container's lock: once `docker start` waits for it, the stalled client is dropped after the lock's
    patience (1 s here; BERTH_COPY_STALL_SECONDS) and the start goes through, nothing left mounted.
    Before, the start waited for as long as the stalled connection lived."""
    from tests.api.conftest import load_images, seed_archives
    from tests.api.test_containers import _wait_for

    monkeypatch.setenv("BERTH_COPY_STALL_SECONDS", "1")
    with running_berthd(run_tag, "--debug") as daemon:
        load_images(daemon, seed_archives("busybox"))
        ok(docker_cli(daemon, "create", "--name", "cp-stall", "busybox", "sleep", "300"))
        files = {f"many/f{i:03d}": os.urandom(64 << 10) for i in range(256)}  # far beyond the buffers
        payload = tar_of(*(entry(name, data) for name, data in files.items()))
        status, _, _ = api(daemon, "PUT", "/v1.51/containers/cp-stall/archive?path=/", payload)
        assert status == 200
        mounts_before = _mounts_under(daemon.root)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(daemon.socket))
            if direction == "out":
                sock.sendall(b"GET /v1.51/containers/cp-stall/archive?path=/many HTTP/1.1\r\nHost: berth\r\n"
                             b"Connection: close\r\n\r\n")
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # under way, then blocked on us
            else:
                sock.sendall(b"PUT /v1.51/containers/cp-stall/archive?path=/tmp HTTP/1.1\r\nHost: berth\r\n"
                             b"Content-Type: application/x-tar\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(payload) + payload[:len(payload) // 2])
                _wait_for(lambda: "PUT /v1.51/containers/cp-stall/archive" in daemon.log_text(),
                          "the copy to reach berthd")
            started = docker_cli(daemon, "start", "cp-stall", timeout=120)
            assert started.returncode == 0, started.stderr
            sock.settimeout(120)
            try:
                while sock.recv(1 << 20):  # dropped: the connection ends, the tar (or the answer) incomplete
                    pass
            except ConnectionResetError:
                pass  # closed with bytes of ours unread: a reset rather than an EOF, dropped all the same
        assert "stalled" in daemon.log_text()
        assert docker_cli(daemon, "inspect", "-f", "{{.State.Status}}", "cp-stall").stdout.strip() == "running"
        ok(docker_cli(daemon, "rm", "-f", "cp-stall"))
        assert _mounts_under(daemon.root) == mounts_before

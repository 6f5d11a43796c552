"""`berth cp`, `berth export`, `berth diff`: each does what `docker` does against the same berthd."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.cli.conftest import BERTH, Tools

pytestmark = pytest.mark.needs_root


def _tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    (tree / "sub" / "b.txt").write_text("b\n")
    os.symlink("a.txt", tree / "link")
    return tree


def _listing(path: Path) -> list[str]:
    """Every entry below `path` with its kind and content: what two copies must share."""
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            rel = str(full.relative_to(path))
            if full.is_symlink():
                out.append(f"{rel} -> {os.readlink(full)}")
            elif full.is_dir():
                out.append(f"{rel}/")
            else:
                data = full.read_bytes()
                shown = repr(data) if len(data) < 64 else "sha256 " + hashlib.sha256(data).hexdigest()
                out.append(f"{rel}: {shown}")
    return sorted(out)


def _container_listing(tools: Tools, container: str, path: str, tool: str) -> str:
    """`path` (file or directory) and everything below it, the tool's name in it replaced by T."""
    directory, _, base = path.rpartition("/")
    return tools.ok("docker", "exec", container, "sh", "-c",
                    f"cd {directory or '/'} && find {base} | sort | while read f; do "
                    "if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; "
                    "elif [ -f \"$f\" ]; then echo \"$f: $(cat \"$f\")\"; else echo \"$f/\"; fi; done"
                    ).replace(f"-{tool}", "-T")


# Each case: (source, destination) with {c} for the container and {h} for a host directory of the tool.
TO_CONTAINER = [
    ("{h}/tree", "{c}:/new-{t}"),  # a directory that does not exist: created as the copy
    ("{h}/tree", "{c}:/tmp/into-{t}"),  # an existing directory: the source lands inside
    ("{h}/tree/.", "{c}:/tmp/into-{t}"),  # dir/. : the content
    ("{h}/tree/a.txt", "{c}:/tmp/file-{t}"),  # a file, renamed
    ("{h}/tree/link", "{c}:/tmp/into-{t}"),  # a symlink stays a symlink without -L
]


def test_cp_to_a_running_container_agrees_with_docker(tools: Tools, busybox: str, tmp_path: Path) -> None:
    tools.ok("docker", "run", "-d", "--name", "cpfs-to", busybox, "sleep", "300")
    tree_parent = tmp_path
    _tree(tree_parent)
    for tool in ("docker", "berth"):
        tools.ok("docker", "exec", "cpfs-to", "mkdir", "-p", f"/tmp/into-{tool}")
        for src, dst in TO_CONTAINER:
            tools.ok(tool, "cp", src.format(h=tree_parent), dst.format(c="cpfs-to", t=tool))
    for path in ("/new-{t}", "/tmp/into-{t}", "/tmp/file-{t}"):
        by_docker = _container_listing(tools, "cpfs-to", path.format(t="docker"), "docker")
        assert by_docker and _container_listing(tools, "cpfs-to", path.format(t="berth"), "berth") == by_docker
    # -L copies the link's target under the link's name.
    tools.ok("berth", "cp", "-L", f"{tree_parent}/tree/link", "cpfs-to:/tmp/followed")
    assert tools.ok("docker", "exec", "cpfs-to", "sh", "-c", "test -L /tmp/followed || cat /tmp/followed") == "a\n"


FROM_CONTAINER = [
    ("{c}:/src", "{h}/new"),  # created as the copy
    ("{c}:/src", "{h}/existing"),  # lands inside
    ("{c}:/src/.", "{h}/content"),  # the content only
    ("{c}:/src/a.txt", "{h}/file.txt"),
    ("{c}:/src/a.txt", "{h}/existing/"),
    ("{c}:/src/link", "{h}/link-copy"),  # a symlink stays a symlink
    ("{c}:/", "{h}/root-copy"),  # the whole root, named after the destination
]


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_cp_from_a_container_agrees_with_docker(tools: Tools, busybox: str, tmp_path: Path, state: str) -> None:
    name = f"cpfs-from-{state}"
    tools.ok("docker", "run", "-d", "--name", name, busybox, "sleep", "300")
    _tree(tmp_path)
    tools.ok("docker", "cp", f"{tmp_path}/tree", f"{name}:/src")
    if state == "stopped":
        tools.ok("docker", "stop", "-t", "0", name)
    results = {}
    for tool in ("docker", "berth"):
        host = tmp_path / tool
        (host / "existing").mkdir(parents=True)
        for src, dst in FROM_CONTAINER:
            tools.ok(tool, "cp", src.format(c=name), dst.format(h=host))
        tools.ok(tool, "cp", "-L", f"{name}:/src/link", str(host / "followed"))  # the target, under the new name
        results[tool] = _listing(host)
    assert results["berth"] == results["docker"]
    assert "new/sub/b.txt: b'b\\n'" in results["berth"] and "content/a.txt: b'a\\n'" in results["berth"]
    assert "link-copy -> a.txt" in results["berth"] and "followed: b'a\\n'" in results["berth"]
    assert "root-copy/src/sub/b.txt: b'b\\n'" in results["berth"] and "root-copy/bin/" in results["berth"]


def test_cp_with_tar_streams_on_stdin_and_stdout(tools: Tools, busybox: str, tmp_path: Path) -> None:
    tools.ok("docker", "run", "-d", "--name", "cpfs-dash", busybox, "sleep", "300")
    _tree(tmp_path)
    packed = subprocess.run(["tar", "cf", "-", "-C", str(tmp_path), "tree"], capture_output=True, check=True).stdout
    up = subprocess.run([BERTH, "cp", "-", "cpfs-dash:/tmp"], input=packed, env=tools.daemon.env(),
                        capture_output=True, timeout=60)
    assert up.returncode == 0, up.stderr
    assert tools.ok("docker", "exec", "cpfs-dash", "cat", "/tmp/tree/sub/b.txt") == "b\n"
    outputs = {}
    for tool in ("docker", BERTH):
        down = subprocess.run([tool, "cp", "cpfs-dash:/tmp/tree", "-"], env=tools.daemon.env(), capture_output=True,
                              timeout=60)
        assert down.returncode == 0, down.stderr
        with tarfile.open(fileobj=io.BytesIO(down.stdout)) as tar:
            outputs[tool] = sorted((m.name, m.type, m.size) for m in tar.getmembers())
    assert outputs[BERTH] == outputs["docker"]
    assert ("tree/sub/b.txt", tarfile.REGTYPE, 2) in outputs[BERTH]


def test_cp_errors_read_like_dockers(tools: Tools, busybox: str, tmp_path: Path) -> None:
    tools.ok("docker", "run", "-d", "--name", "cpfs-err", busybox, "sleep", "300")
    _tree(tmp_path)
    cases = [
        ["cpfs-err:/nope", str(tmp_path / "x")],
        ["no-such-container:/etc", str(tmp_path / "x")],
        ["cpfs-err:/etc/passwd", str(tmp_path / "missing-dir" / "x")],
        [str(tmp_path / "tree" / "a.txt"), "cpfs-err:/missing-dir/"],
        [str(tmp_path / "tree"), "cpfs-err:/etc/passwd"],
        [str(tmp_path / "nonexistent"), "cpfs-err:/tmp"],
        [str(tmp_path / "tree" / "a.txt"), "cpfs-err:/dev/null"],
        ["cpfs-err:/etc/passwd", "/dev/null"],
        ["a", "b"],
        ["a:/x", "b:/y"],
    ]
    # The engine refuses before it reads the body: a body larger than the socket buffers must still
    # end with the engine's answer, not a broken pipe.
    tools.ok("docker", "run", "-d", "--name", "cpfs-ro", "--read-only", busybox, "sleep", "300")
    (tmp_path / "big").write_bytes(os.urandom(8 << 20))
    cases.append([str(tmp_path / "big"), "cpfs-ro:/big"])
    for args in cases:
        by_docker = tools.docker("cp", *args)
        by_berth = tools.berth("cp", *args)
        assert by_docker.returncode != 0 and by_berth.returncode != 0, args
        # docker also logs its tar goroutine's complaints (`time="..." level=error ...`), in any order.
        message = [line for line in by_docker.stderr.splitlines() if not line.startswith('time="')]
        assert by_berth.stderr.strip() == message[-1], args
        assert "Traceback" not in by_berth.stderr


def test_export_and_diff_agree_with_docker(tools: Tools, busybox: str, tmp_path: Path) -> None:
    tools.ok("docker", "run", "-d", "--name", "cpfs-exp", busybox, "sleep", "300")
    tools.ok("docker", "exec", "cpfs-exp", "sh", "-c",
             "mkdir /added && echo x > /added/f && rm /etc/group && echo '#' >> /etc/passwd")
    lists = {}
    for tool in ("docker", "berth"):
        out = tmp_path / f"{tool}.tar"
        tools.ok(tool, "export", "-o", str(out), "cpfs-exp")
        lists[tool] = subprocess.run(["tar", "tf", str(out)], capture_output=True, text=True, check=True).stdout
    assert lists["berth"] == lists["docker"]
    assert "added/f" in lists["berth"].split() and "etc/group" not in lists["berth"].split()
    piped = subprocess.run(f"{BERTH} export cpfs-exp | tar t", shell=True, env=tools.daemon.env(),
                           capture_output=True, text=True, timeout=60)
    assert piped.stdout == lists["docker"]
    by_docker = tools.ok("docker", "diff", "cpfs-exp")
    assert tools.ok("berth", "diff", "cpfs-exp") == by_docker
    assert by_docker.splitlines() == ["A /added", "A /added/f", "C /etc", "D /etc/group", "C /etc/passwd"]
    refused = tools.berth("export", "no-such-container")
    assert refused.returncode == 1 and refused.stderr.strip() == "Error response from daemon: No such container: " \
        "no-such-container"

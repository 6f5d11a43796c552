"""Image commands: `berth` and `docker` against one berthd must agree on every effect and table."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.cli.conftest import BERTH, Tools, seed_archive

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def loaded(tools: Tools) -> str:
    """busybox and hello-world loaded by `berth load` (the first scenario of this module)."""
    out = tools.berth("load", "-i", str(seed_archive("busybox")))
    assert (out.returncode, out.stdout) == (0, "Loaded image: busybox:latest\n"), out.stderr
    with open(seed_archive("hello-world"), "rb") as archive:
        piped = subprocess.run([BERTH, "load", "-q"], stdin=archive, env=tools.daemon.env(), capture_output=True,
                               text=True, timeout=60)
    assert (piped.returncode, piped.stdout) == (0, "Loaded image: hello-world:latest\n"), piped.stderr
    return "busybox"


def _sorted_table(text: str) -> list[str]:
    # Docker orders the rows of one image's tags by Go map iteration (random): keep the header first.
    header, *rows = text.splitlines()
    return [header, *sorted(rows)]


def test_loaded_images_are_listed_by_docker(tools: Tools, loaded: str) -> None:
    listed = tools.ok("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert sorted(listed) == ["busybox:latest", "hello-world:latest"]


def test_images_table_matches_docker(tools: Tools, loaded: str) -> None:
    tools.ok("docker", "tag", "busybox", "example.com/team/box:v1")
    for args in ([], ["-a"], ["--no-trunc"], ["-q"], ["--digests"],
                 ["--format", "table {{.ID}}\t{{.Repository}}\t{{.Size}}"], ["--format", "{{.Repository}}"]):
        ours, theirs = tools.ok("berth", "images", *args), tools.ok("docker", "images", *args)
        if args == ["-q"] or (args[:1] == ["--format"] and "table" not in args[1]):
            assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), args
        else:
            assert _sorted_table(ours) == _sorted_table(theirs), args
    header = tools.ok("berth", "image", "ls").splitlines()[0]
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]


def test_images_repository_argument_filters(tools: Tools, loaded: str) -> None:
    listed = tools.ok("berth", "images", "--format", "{{.Repository}}", "hello-world").split()
    assert listed == ["hello-world"]


def test_images_json_matches_docker(tools: Tools, loaded: str) -> None:
    ours = [json.loads(line) for line in tools.ok("berth", "images", "--format", "json").splitlines()]
    theirs = [json.loads(line) for line in tools.ok("docker", "images", "--format", "json").splitlines()]
    key = lambda row: (row["Repository"], row["Tag"])  # noqa: E731
    ours.sort(key=key)
    theirs.sort(key=key)
    for mine, docker in zip(ours, theirs, strict=True):
        for field in ("ID", "Repository", "Tag", "Size", "CreatedAt", "CreatedSince", "Digest", "Containers"):
            assert mine[field] == docker[field], field


def test_tag_and_rmi_agree_with_docker(tools: Tools, loaded: str) -> None:
    assert tools.ok("berth", "tag", "busybox", "mine:1") == ""
    assert tools.ok("docker", "image", "inspect", "-f", "{{.Id}}", "mine:1") == \
        tools.ok("docker", "image", "inspect", "-f", "{{.Id}}", "busybox")
    assert tools.ok("berth", "image", "tag", "busybox:latest", "mine") == ""
    assert "mine:latest" in tools.ok("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    tools.ok("docker", "tag", "busybox", "theirs:2")
    assert tools.ok("berth", "rmi", "theirs:2", "mine:1") == "Untagged: theirs:2\nUntagged: mine:1\n"
    assert tools.ok("berth", "image", "rm", "mine") == "Untagged: mine:latest\n"
    listed = tools.ok("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert not {"theirs:2", "mine:1", "mine:latest"} & set(listed)


def test_history_matches_docker(tools: Tools, loaded: str) -> None:
    for args in ([], ["--no-trunc"], ["-q"], ["-H=false"], ["--format", "{{.CreatedBy}}|{{.Size}}"]):
        assert tools.ok("berth", "history", *args, "busybox") == tools.ok("docker", "history", *args, "busybox")
    assert tools.ok("berth", "image", "history", "busybox") == tools.ok("docker", "image", "history", "busybox")


def test_image_inspect_agrees(tools: Tools, loaded: str) -> None:
    for fmt in ("{{.Id}}", "{{json .RepoTags}}", "{{.Config.Cmd}}", "{{.Os}}/{{.Architecture}}"):
        for command in (["image", "inspect"], ["inspect", "--type", "image"], ["inspect"]):
            ours = tools.ok("berth", *command, "-f", fmt, "busybox")
            assert ours == tools.ok("docker", *command, "-f", fmt, "busybox"), (command, fmt)
    assert json.loads(tools.ok("berth", "image", "inspect", "hello-world")) == \
        json.loads(tools.ok("docker", "image", "inspect", "hello-world"))


def test_save_output_loads_back_with_docker(tools: Tools, loaded: str, tmp_path: Path) -> None:
    target = tmp_path / "hello.tar"
    assert tools.ok("berth", "save", "-o", str(target), "hello-world") == ""
    with tarfile.open(target) as archive:
        assert "manifest.json" in archive.getnames()
    tools.ok("docker", "rmi", "hello-world")
    assert tools.ok("docker", "load", "-i", str(target)) == "Loaded image: hello-world:latest\n"
    piped = subprocess.run([BERTH, "image", "save", "hello-world"], env=tools.daemon.env(), capture_output=True,
                           timeout=60)
    assert piped.returncode == 0 and piped.stdout == target.read_bytes()


def test_import_makes_the_image_docker_import_makes(tools: Tools, loaded: str, tmp_path: Path) -> None:
    tools.ok("docker", "create", "--name", "imp-src", loaded, "true")
    rootfs = tmp_path / "rootfs.tar"
    with open(rootfs, "wb") as out:
        subprocess.run(["docker", "export", "imp-src"], env=tools.daemon.env(), stdout=out, check=True, timeout=60)
    changes = ["-c", 'CMD ["/bin/sh", "-c", "echo imported"]', "-c", "ENV STAGE=imported", "-m", "from a tarball"]
    made = tools.berth("import", *changes, str(rootfs), "imp-berth:v1")
    assert made.returncode == 0 and made.stdout.startswith("sha256:"), made.stderr
    tools.ok("docker", "import", *changes, str(rootfs), "imp-docker:v1")
    ours, theirs = (json.loads(tools.ok("docker", "image", "inspect", name))[0]
                    for name in ("imp-berth:v1", "imp-docker:v1"))
    assert ours["RootFS"] == theirs["RootFS"] and len(ours["RootFS"]["Layers"]) == 1
    assert (ours["Config"]["Cmd"], ours["Config"]["Env"], ours["Comment"]) == (
        theirs["Config"]["Cmd"], theirs["Config"]["Env"], theirs["Comment"])
    assert ours["Comment"] == "from a tarball"
    assert tools.ok("docker", "run", "--rm", "--network", "none", "imp-berth:v1") == "imported\n"
    # stdin, gzip-compressed, untagged: the default message names the source.
    gz = subprocess.run(["gzip", "-c", str(rootfs)], capture_output=True, check=True, timeout=60).stdout
    piped = subprocess.run([BERTH, "image", "import", "-", "imp-stdin"], env=tools.daemon.env(), input=gz,
                           capture_output=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    comment = tools.ok("docker", "image", "inspect", "-f", "{{.Comment}} {{len .RootFS.Layers}}", "imp-stdin")
    assert comment == "Imported from - 1\n"
    # Not a tarball: the engine's one-line refusal, to both tools alike.
    (tmp_path / "not.tar").write_text("plain text, not an archive\n")
    ours_bad, theirs_bad = (tools.run(tool, "import", str(tmp_path / "not.tar"), "imp-bad")
                            for tool in (BERTH, "docker"))
    assert ours_bad.returncode == theirs_bad.returncode == 1
    assert ours_bad.stderr.startswith("Error response from daemon: ") and ours_bad.stderr.count("\n") == 1
    assert ours_bad.stderr == theirs_bad.stderr
    tools.ok("docker", "rm", "imp-src")


def test_import_from_a_url_is_refused_plainly(tools: Tools) -> None:
    # berthd fetches nothing itself: a URL source is a clear 400, the same to both CLIs.
    ours, theirs = (tools.run(tool, "import", "http://192.0.2.1/rootfs.tar", "imp-url") for tool in (BERTH, "docker"))
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr == theirs.stderr
    assert ours.stderr.startswith("Error response from daemon: importing from 'http://192.0.2.1/rootfs.tar' is not "
                                  "supported by Berth")

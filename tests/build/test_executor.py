"""The executor's parts without a daemon: config edits, COPY rules and safety, checksums, the cache, context trim.

The whole executor (RUN in containers, commits, the streamed output) runs
through berthd in tests/api/test_build.py and tests/cli/test_build.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from engine.build import config_edit
from engine.build import instructions as ins
from engine.build.cache import BuildCache
from engine.build.copier import (
    CopyError,
    Destination,
    Ownership,
    checksum,
    copy_sources,
    heredoc_source,
    resolve_sources,
)
from engine.build.dockerfile_parser import parse
from engine.build.executor import _run_argv
from engine.build.service import drop_ignored_build_files, trim_context
from engine.store.database import MetadataDB


def _one(text: str) -> ins.Instruction:
    return parse(f"FROM scratch\n{text}\n").instructions[1]


def _apply(config: dict[str, Any], *lines: str, cmd_set: bool = False) -> dict[str, Any]:
    for line in lines:
        config = config_edit.apply(config, _one(line), cmd_set)
    return config


def test_entrypoint_drops_an_inherited_cmd_but_not_one_set_in_the_stage() -> None:
    inherited: dict[str, Any] = {"Cmd": ["sh"]}
    assert "Cmd" not in _apply(inherited, 'ENTRYPOINT ["/app"]')
    assert _apply(inherited, 'ENTRYPOINT ["/app"]', cmd_set=True)["Cmd"] == ["sh"]


def test_shell_forms_use_the_stage_shell() -> None:
    config = _apply({}, 'SHELL ["/bin/bash", "-ec"]', "CMD echo $HOME")
    assert config["Cmd"] == ["/bin/bash", "-ec", "echo $HOME"]
    assert _apply({}, "ENTRYPOINT exec app")["Entrypoint"] == ["/bin/sh", "-c", "exec app"]


def test_metadata_instructions() -> None:
    config = _apply({"Env": ["PATH=/bin", "A=old"]}, "ENV A=new B=2", "WORKDIR /srv", "WORKDIR app",
                    "EXPOSE 80 53/udp 9000-9002", "LABEL x=y", "USER nobody", "STOPSIGNAL SIGINT",
                    "VOLUME /data", "ONBUILD RUN echo hi",
                    "HEALTHCHECK --interval=10s --retries=2 CMD true")
    assert config["Env"] == ["PATH=/bin", "A=new", "B=2"]
    assert config["WorkingDir"] == "/srv/app"
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp", "9000/tcp", "9001/tcp", "9002/tcp"}
    assert config["Labels"] == {"x": "y"} and config["User"] == "nobody" and config["StopSignal"] == "SIGINT"
    assert config["Volumes"] == {"/data": {}} and config["OnBuild"] == ["RUN echo hi"]
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 10_000_000_000, "Retries": 2}


def test_run_heredoc_body_is_the_script() -> None:
    run = _one("RUN <<EOF\necho one\necho two\nEOF")
    assert isinstance(run, ins.Run)
    assert _run_argv({}, run) == ["/bin/sh", "-c", "echo one\necho two\n"]
    fed = _one("RUN cat <<EOF > /x\nhello\nEOF")
    assert isinstance(fed, ins.Run)
    assert _run_argv({}, fed)[2] == "cat <<EOF > /x\nhello\nEOF\n"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "context"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    (root / "dir" / "sub" / "c.txt").write_text("c")
    os.symlink("/etc", root / "etc-link")  # resolves inside the context, where there is no etc
    os.symlink("a.txt", root / "rel-link")
    return root


def test_sources_stay_inside_their_root(context: Path) -> None:
    with pytest.raises(CopyError, match="forbidden path outside the build context"):
        resolve_sources(context, ["../x"])
    with pytest.raises(CopyError, match="file not found"):
        resolve_sources(context, ["etc-link/passwd"])
    assert [s.name for s in resolve_sources(context, ["*.txt"])] == ["a.txt", "b.txt"]
    assert resolve_sources(context, ["rel-link"])[0].path == context / "a.txt"
    with pytest.raises(CopyError, match="no source files"):
        resolve_sources(context, ["*.none"])


def test_heredoc_file_names_stay_in_the_scratch_dir(tmp_path: Path) -> None:
    """`COPY <<../../x /dest`: the name comes from the Dockerfile and must never name a host path."""
    scratch = tmp_path / "work" / "src" / "heredoc"
    scratch.mkdir(parents=True)
    name = "../" * 6 + "escaped"
    [instruction] = parse(f"FROM scratch\nCOPY <<{name} /x\nhello\n{name}\n").instructions[1:]
    assert isinstance(instruction, ins.Copy)
    source = heredoc_source(scratch, instruction.contents[0].path, instruction.contents[0].data)
    assert source.path == scratch / "escaped" and source.path.read_text() == "hello\n"
    assert source.name == "escaped"
    assert sorted(p.name for p in tmp_path.rglob("escaped")) == ["escaped"]  # only the one in scratch
    nested = heredoc_source(scratch, "a/b", "x")
    assert (nested.path, nested.name) == (scratch / "a" / "b", "b")
    with pytest.raises(CopyError, match="invalid heredoc file name"):
        heredoc_source(scratch, "..", "x")


def test_checksum_covers_content_mode_and_owner_not_mtime(context: Path) -> None:
    before = checksum(resolve_sources(context, ["dir"]))
    os.utime(context / "dir" / "sub" / "c.txt", (1, 1))
    assert checksum(resolve_sources(context, ["dir"])) == before
    os.chmod(context / "dir" / "sub" / "c.txt", 0o600)
    after_mode = checksum(resolve_sources(context, ["dir"]))
    assert after_mode != before
    (context / "dir" / "sub" / "c.txt").write_text("C")
    assert checksum(resolve_sources(context, ["dir"])) != after_mode


@pytest.mark.needs_root
def test_copy_rules_and_writes_through_image_symlinks_stay_in_the_root(context: Path, tmp_path: Path) -> None:
    image = tmp_path / "image"
    (image / "usr" / "bin").mkdir(parents=True)
    os.symlink("/usr/bin", image / "bin")  # absolute, as in merged-/usr images: must resolve inside `image`
    dest = Destination(image, Ownership(123, 456), None)
    try:
        copy_sources(dest, resolve_sources(context, ["a.txt"]), "/bin/tool", "/", False)
        copy_sources(dest, resolve_sources(context, ["a.txt", "b.txt"]), "rel/", "/work", False)
        copy_sources(dest, resolve_sources(context, ["dir"]), "/tree", "/", False)
        with pytest.raises(CopyError, match="must be a directory"):
            copy_sources(dest, resolve_sources(context, ["a.txt", "b.txt"]), "/single", "/", False)
    finally:
        dest.close()
    assert (image / "usr" / "bin" / "tool").read_text() == "a"
    assert not Path("/usr/bin/tool").exists()
    assert sorted(os.listdir(image / "work" / "rel")) == ["a.txt", "b.txt"]
    assert (image / "tree" / "sub" / "c.txt").read_text() == "c"  # a directory's contents, not the directory
    st = os.stat(image / "tree" / "sub" / "c.txt")
    assert (st.st_uid, st.st_gid) == (123, 456)


def test_cache_survives_reopening_the_database(tmp_path: Path) -> None:
    db = MetadataDB.in_data_root(tmp_path)
    BuildCache(db).record("sha256:parent", "sha256:step", "sha256:child")
    db.close()
    db = MetadataDB.in_data_root(tmp_path)
    try:
        cache = BuildCache(db)
        assert cache.lookup("sha256:parent", "sha256:step") == "sha256:child"
        assert cache.lookup("sha256:other", "sha256:step") is None
        assert [e.image_id for e in cache.clear()] == ["sha256:child"]
        assert cache.lookup("sha256:parent", "sha256:step") is None
    finally:
        db.close()


def test_trim_context_applies_dockerignore_exceptions_and_doublestar(tmp_path: Path) -> None:
    for name in ("Dockerfile", "keep.txt", "x.key", "logs/a.log", "logs/keep.log", "a/b/c.tmp", "a/b/ok"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("*.key\nlogs\n!logs/keep.log\n**/*.tmp\nDockerfile\n")
    trim_context(tmp_path, "Dockerfile")
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [".dockerignore", "Dockerfile", "a/b/ok", "keep.txt", "logs/keep.log"]
    # Once read, an ignored Dockerfile leaves the context (moby's removeDockerfile); .dockerignore is not ignored.
    drop_ignored_build_files(tmp_path, "Dockerfile")
    assert not (tmp_path / "Dockerfile").exists() and (tmp_path / ".dockerignore").exists()

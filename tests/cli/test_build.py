"""`berth build`, `berth commit` and `berth builder prune`, with the docker CLI reading the results."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Tools

pytestmark = pytest.mark.needs_root

DOCKERFILE = """\
FROM busybox AS gen
ARG WORD=default
RUN echo "$WORD" > /word && echo generating
FROM busybox
COPY --from=gen /word /word
COPY msg.txt /msg.txt
ENV SUFFIX=!
WORKDIR /tmp
CMD ["sh", "-c", "echo $(cat /word) $(cat /msg.txt)$SUFFIX $(pwd)"]
"""


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "msg.txt").write_text("world\n")
    return tmp_path


def test_berth_build_streams_the_steps_and_tags(tools: Tools, busybox: str, context: Path) -> None:
    out = tools.berth("build", "-t", "cli-built:1", "--build-arg", "WORD=hello", "--label", "by=berth",
                      "--iidfile", str(context / "iid"), str(context))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Step 1/10 : FROM busybox AS gen"  # 9 instructions + the --label step
    assert "generating" in lines and lines[-1] == "Successfully tagged cli-built:1"
    image_id = (context / "iid").read_text()
    assert lines[-2] == f"Successfully built {image_id[7:19]}"
    assert tools.ok("docker", "run", "--rm", "cli-built:1") == "hello world! /tmp\n"
    assert tools.ok("docker", "inspect", "-f", "{{.Config.Labels.by}}", "cli-built:1") == "berth\n"
    again = tools.berth("build", "-t", "cli-built:1", "--build-arg", "WORD=hello", "--label", "by=berth",
                        str(context))
    assert again.stdout.count(" ---> Using cache") == 8  # every step but the two FROMs (the label is a step)


def test_berth_build_quiet_target_file_and_no_cache(tools: Tools, busybox: str, context: Path,
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tools.berth("build", "-q", "--target", "gen", "--no-cache", str(context))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sha256:") and len(out.stdout.strip()) == 71
    assert tools.ok("docker", "run", "--rm", out.stdout.strip(), "cat", "/word") == "default\n"
    outside = tmp_path_factory.mktemp("elsewhere") / "Other"
    outside.write_text('FROM busybox\nCOPY . /ctx/\nCMD ["cat", "/ctx/msg.txt"]\n')
    built = tools.berth("build", "-f", str(outside), "-t", "cli-built:f", str(context))
    assert built.returncode == 0, built.stderr
    assert tools.ok("docker", "run", "--rm", "cli-built:f") == "world\n"
    # The Dockerfile sent from outside the context is not part of it (nor a generated .dockerignore).
    assert tools.ok("docker", "run", "--rm", "cli-built:f", "ls", "-A", "/ctx").split() == ["Dockerfile", "msg.txt"]


def test_berth_build_from_stdin(tools: Tools, busybox: str) -> None:
    out = tools.berth("build", "-t", "cli-built:stdin", "-", stdin='FROM busybox\nCMD ["echo", "from stdin"]\n')
    assert out.returncode == 0, out.stderr
    assert tools.ok("docker", "run", "--rm", "cli-built:stdin") == "from stdin\n"


def test_berth_build_failure_is_one_line_with_the_exit_code(tools: Tools, busybox: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo partial && exit 42\n")
    out = tools.berth("build", str(tmp_path))
    assert out.returncode == 42
    assert "partial" in out.stdout
    assert out.stderr.strip().endswith("returned a non-zero code: 42 (Dockerfile line 2)")
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    bad = tools.berth("build", str(tmp_path / "missing"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_berth_commit_and_builder_prune(tools: Tools, busybox: str, tmp_path: Path) -> None:
    tools.ok("docker", "run", "--name", "cli-commit", "busybox", "sh", "-c", "echo saved > /saved")
    image_id = tools.ok("berth", "commit", "-m", "from berth", "-c", "CMD cat /saved", "cli-commit",
                        "cli-committed:v1").strip()
    assert image_id.startswith("sha256:")
    assert tools.ok("docker", "run", "--rm", "cli-committed:v1") == "saved\n"
    assert "from berth" in tools.ok("docker", "history", "cli-committed:v1").splitlines()[1]
    tools.ok("docker", "rm", "cli-commit")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo x > /x\n")
    tools.ok("berth", "build", str(tmp_path))
    pruned = tools.ok("berth", "builder", "prune", "-f")
    assert pruned.splitlines()[0] == "Deleted build cache objects:"
    assert "Total reclaimed space" in pruned
    assert " ---> Using cache" not in tools.ok("berth", "build", str(tmp_path))

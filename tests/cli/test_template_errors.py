"""--format templates that fail: berth prints what the real docker CLI prints (same berthd, same input).

Docker words them per command (inspect: `template parsing error: ...`, exit 64
when the template does not parse, 1 when it fails on an object; ps: `failed to
execute template: ...`), names the failing node and its line:column, and reports
each object's failure.  Cases where docker first runs the template on its own Go
structs (whose type names berth cannot know) are left out.
"""

from __future__ import annotations

import pytest

from tests.cli.conftest import Tools

pytestmark = pytest.mark.needs_root

INSPECT_FORMATS = (
    "{{index .Config.Cmd 5}}", "{{index .Config.Cmd -1}}", "{{index .Config.Cmd 3}}", "{{index .Config.Cmd 1 2}}",
    '{{index .Config.Cmd "a"}}', "{{index .Config 1}}", '{{index .Config.Labels "nope"}}', "{{index .Name 0}}",
    "{{.Nope}}", "{{.State.Nope}}", "{{.Nope.X}}", "{{.Name.X}}", "{{.Config.Cmd.X}}", "{{if .Nope}}x{{end}}",
    "{{with .State}}{{.Nope}}{{end}}", "{{$x := .State}}{{$x.Nope}}", '{{printf "%s" (index .Config.Cmd 7)}}',
    '{{index .Config.Cmd 1 | printf "%s"}}', "{{json}}", "{{join .Config.Cmd}}", "a{{.Name}}\n{{index .Args 9}}",
    "{{.Name", "{{nosuchfunc .}}", "{{end}}", "{{range .Mounts}}",
)
LIST_FORMATS = ("{{.Nope}}", "{{index .ID 99}}", "{{json}}", "{{.ID", '{{index .Names "x"}}')


def _same(tools: Tools, *args: str) -> None:
    ours, theirs = tools.berth(*args), tools.docker(*args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args


@pytest.fixture(scope="module")
def objects(tools: Tools, busybox: str) -> tuple[str, str]:
    """An exited container with a 3-word command and a created one with a 1-word command."""
    tools.ok("docker", "run", "--network", "none", "--name", "te-three", busybox, "sh", "-c", "true")
    tools.ok("docker", "create", "--network", "none", "--name", "te-one", busybox, "true")
    return "te-three", "te-one"


@pytest.mark.parametrize("fmt", INSPECT_FORMATS)
def test_inspect_template_errors_match_docker(tools: Tools, objects: tuple[str, str], fmt: str) -> None:
    _same(tools, "inspect", "--format", fmt, *objects)


def test_index_out_of_range_words_and_exit_code(tools: Tools, objects: tuple[str, str]) -> None:
    out = tools.berth("inspect", "--format", "{{index .Config.Cmd 5}}", objects[0])
    assert out.returncode == 1 and out.stdout == "\n"
    assert out.stderr == ('template parsing error: template: :1:2: executing "" at <index .Config.Cmd 5>: '
                          "error calling index: index out of range: 5\n")
    unparsable = tools.berth("inspect", "--format", "{{.Name", objects[0])
    assert (unparsable.returncode, unparsable.stderr) == (64, "template parsing error: template: :1: unclosed action\n")


@pytest.mark.parametrize("fmt", LIST_FORMATS)
@pytest.mark.parametrize("command", [["ps", "-a"], ["images"], ["network", "ls"], ["history", "busybox"]],
                         ids=" ".join)
def test_list_template_errors_match_docker(tools: Tools, objects: tuple[str, str], command: list[str],
                                           fmt: str) -> None:
    _same(tools, *command, "--format", fmt)


@pytest.mark.parametrize("command", ["version", "info"])
def test_system_template_parse_errors_match_docker(tools: Tools, command: str) -> None:
    _same(tools, command, "--format", "{{.Nope")

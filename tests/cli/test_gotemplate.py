"""Berth's --format engine against Go's own text/template, via the real docker CLI.

`docker version --format T` renders T in Go over the same data that
`{{json .}}` prints; rendering T with engine.cli.gotemplate over that JSON
must give the same text.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.gotemplate import TemplateError, render
from tests.api.conftest import RunningDaemon, start_berthd, stop

TEMPLATES = [
    "{{.Server.Version}}",
    "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
    "{{range .Server.Components}}{{.Name}}={{.Version}};{{end}}",
    "{{range $i, $c := .Server.Components}}{{$i}}:{{$c.Name}} {{end}}",
    "{{json .Server.Components}}",
    '{{if eq .Server.Os "linux"}}yes{{else}}no{{end}}',
    '{{if eq .Server.Os "plan9"}}a{{else if eq .Server.Arch "amd64"}}b{{else}}c{{end}}',
    "{{index .Server.Components 0 | json}}",
    "{{upper .Server.Os}} {{.Server.Os | upper}} {{title .Server.Os}}",
    '{{join (split .Server.KernelVersion ".") "-"}}',
    "{{len .Server.Components}}",
    '{{printf "%s/%s" .Server.Os .Server.Arch}}',
    'a  {{- " trimmed " -}}  b',
    "{{with .Server}}{{.Os}}{{end}}",
    "{{with index .Server.Components 0}}{{range $k, $v := .Details}}{{$k}}={{$v}},{{end}}{{end}}",
    "{{println .Server.Os .Server.Arch}}x",
    "{{$os := .Server.Os}}{{range .Server.Components}}{{$os}}-{{.Name}}{{end}}",
]


@pytest.fixture(scope="module")
def daemon(run_tag: str) -> Iterator[RunningDaemon]:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-cli-") as tmp:
        running = start_berthd(Path(tmp))
        try:
            yield running
        finally:
            stop(running)


def _go(daemon: RunningDaemon, template: str) -> str:
    out = subprocess.run(["docker", "version", "--format", template], env=daemon.env(),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("template", TEMPLATES)
def test_renders_like_go(daemon: RunningDaemon, template: str) -> None:
    data = json.loads(_go(daemon, "{{json .}}"))
    # The docker CLI prints a newline after the rendered template.
    assert render(template, data) + "\n" == _go(daemon, template)


def test_go_value_printing() -> None:
    assert render("{{.M}} {{.L}} {{.N}} {{.Missing}}", {"M": {"b": 1, "a": "x"}, "L": [1, "y"], "N": None}) == (
        "map[a:x b:1] [1 y] <nil> <no value>"
    )
    assert render('{{index .Labels "com.example"}}', {"Labels": {"com.example": "v"}}) == "v"


@pytest.mark.parametrize("bad", ["{{.A", "{{range .A}}x", "{{end}}", "{{nosuchfunc .A}}", "{{index .A 5}}"])
def test_errors_are_template_errors(bad: str) -> None:
    with pytest.raises(TemplateError):
        render(bad, {"A": [1]})

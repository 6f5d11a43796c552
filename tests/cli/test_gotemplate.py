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

from engine.cli.gotemplate import ACTION_PATTERN, TOKEN_PATTERN, TemplateError, render
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


def _regex_tokens(source: str) -> list[tuple[str, str, int]]:
    import re

    pattern = re.compile(TOKEN_PATTERN, re.X)
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(source) and source[pos:].strip():
        match = pattern.match(source, pos)
        if not match or match.end() == pos:
            return [*out, ("error", "", pos)]
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return out


SAMPLES = ['{{.A}}', '{{- .A -}}', '{{-.A-}}', '{{- -}}', '{{-}}', '{{{.A}}}', 'a{{ .B }}b{{', '{{.A}} }} {{',
           '{{"a\\"b" `r` -1.5 $x.Y.Z $ . .5 := | ( ) , ident_9 é}}', '{{"\\\n"}}', '{{5abc -x}}', '{{.A.}}',
           '{{$.A $x := .B}}', '{{ "unterminated }}', '{{ `open }}', '{{\n.A\n}}', '{{-\t.A\t-}}', '{{ -}}']


def test_hand_scanners_match_the_regexes() -> None:
    import random
    import re

    from engine.cli.gotemplate import _actions, _tokens

    alphabet = list('{}-. $"`\\\n\t|(),:=aZ_9é5')
    rng = random.Random(8)
    samples = SAMPLES + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(3000)]
    action = re.compile(ACTION_PATTERN, re.S)
    for sample in samples:
        expected = [(m.start(), m.start(2), m.end(2), m.end(), bool(m.group(1)), bool(m.group(3)))
                    for m in action.finditer(sample)]
        assert [(a.start, a.body_start, a.body_end, a.end, a.trim_left, a.trim_right)
                for a in _actions(sample)] == expected, sample
        wanted = _regex_tokens(sample)
        try:
            got = _tokens(sample)
        except TemplateError:
            assert wanted and wanted[-1][0] == "error", sample
        else:
            assert got == wanted, sample

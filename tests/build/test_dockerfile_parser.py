"""The Dockerfile parser on real-world shapes: expected structure, line numbers, Docker's error texts."""

from __future__ import annotations

import textwrap

import pytest

from engine.build import instructions as ins
from engine.build.dockerfile_parser import parse
from engine.build.errors import DockerfileError
from engine.build.heredoc import Heredoc


def dockerfile(text: str) -> list[ins.Instruction]:
    return list(parse(textwrap.dedent(text).lstrip("\n")).instructions)


def test_multi_stage_with_global_arg_keeps_lines_and_stage_names():
    parsed = dockerfile(
        """
        # syntax=docker/dockerfile:1.7
        ARG GO_VERSION=1.22 \\
            ALPINE=3.19
        FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS Builder
        WORKDIR /src
        RUN --mount=type=cache,target=/root/.cache/go-build \\
            --network=none \\
            go build -o /out/app .

        FROM alpine:${ALPINE}
        COPY --from=builder /out/app /usr/local/bin/app
        """
    )
    assert [(i.keyword, i.line, i.end_line) for i in parsed] == [
        ("ARG", 2, 3),
        ("FROM", 4, 4),
        ("WORKDIR", 5, 5),
        ("RUN", 6, 8),
        ("FROM", 10, 10),
        ("COPY", 11, 11),
    ]
    arg, builder, _, run, final, copy = parsed
    assert isinstance(arg, ins.Arg)
    assert arg.args == (ins.ArgDecl("GO_VERSION", "1.22"), ins.ArgDecl("ALPINE", "3.19"))
    assert isinstance(builder, ins.From)
    assert (builder.base, builder.stage_name, builder.platform) == (
        "golang:${GO_VERSION}-alpine",
        "builder",
        "$BUILDPLATFORM",
    )
    assert isinstance(final, ins.From) and final.stage_name is None
    assert isinstance(run, ins.Run)
    assert run.command == ("go build -o /out/app .",)
    assert run.network == "none"
    assert run.mounts == (ins.RunMount("cache", "/root/.cache/go-build", ()),)
    assert isinstance(copy, ins.Copy)
    assert (copy.from_, copy.sources, copy.dest) == ("builder", ("/out/app",), "/usr/local/bin/app")


def test_comments_and_blank_lines_inside_a_continuation_are_dropped():
    (run,) = dockerfile(
        """
        RUN apt-get update \\
            # install the tools we need
            && apt-get install -y \\

               curl \\
        \t# indented comment
               git
        """
    )
    assert isinstance(run, ins.Run)
    assert run.command == ("apt-get update     && apt-get install -y        curl        git",)
    assert (run.line, run.end_line) == (1, 7)
    assert "#" not in run.original


def test_empty_continuation_line_is_dropped_with_a_warning():
    result = parse("FROM a\nRUN echo a \\\n\n    b\n")
    run = result.instructions[1]
    assert isinstance(run, ins.Run) and run.command == ("echo a     b",)
    assert result.warnings == ("Empty continuation line found in instruction starting on line 2: RUN echo a     b",)
    assert parse("FROM a\nRUN a \\\n# comment\n b\n").warnings == ()


def test_continuation_escape_with_trailing_spaces_still_joins():
    (run,) = dockerfile("RUN echo a \\   \n    b\n")
    assert isinstance(run, ins.Run)
    assert run.command == ("echo a     b",)


def test_keywords_are_case_insensitive():
    parsed = dockerfile(
        """
        from busybox as Base
        run echo hi
        Cmd ["sh"]
        """
    )
    assert [i.keyword for i in parsed] == ["FROM", "RUN", "CMD"]
    assert isinstance(parsed[0], ins.From) and parsed[0].stage_name == "base"


def test_backtick_escape_windows_style():
    parsed = dockerfile(
        """
        # escape=`
        FROM mcr.microsoft.com/windows/servercore:ltsc2022
        COPY testfile.txt c:\\
        RUN dir c:\\ `
            && echo done
        ENV PATH=c:\\tools;c:\\bin
        """
    )
    _, copy, run, env = parsed
    assert isinstance(copy, ins.Copy) and copy.dest == "c:\\"
    assert isinstance(run, ins.Run) and run.command == ("dir c:\\     && echo done",)
    assert (run.line, run.end_line) == (4, 5)
    assert isinstance(env, ins.Env) and env.pairs == (ins.KeyValue("PATH", "c:\\tools;c:\\bin"),)


def test_directives_only_count_at_the_top():
    result = parse("# escape=`\n# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n")
    assert (result.directives.escape, result.directives.syntax, result.directives.check) == (
        "`",
        "docker/dockerfile:1",
        "skip=all",
    )
    late = parse("FROM a\n# escape=`\nRUN echo \\\n  x\n")
    assert late.directives.escape == "\\"
    after_comment = parse("# a comment\n# escape=`\nFROM a\nRUN echo \\\n  x\n")
    assert after_comment.directives.escape == "\\"
    run = after_comment.instructions[1]
    assert isinstance(run, ins.Run) and run.command == ("echo   x",)


def test_heredoc_run_script():
    (run,) = dockerfile(
        """
        RUN <<EOF
        set -e
        echo "$HOME"
        EOF
        """
    )
    assert isinstance(run, ins.Run)
    assert run.command == ("<<EOF",)
    assert run.heredocs == (Heredoc("EOF", 'set -e\necho "$HOME"\n', expand=True, chomp=False),)
    assert (run.line, run.end_line) == (1, 4)


def test_heredoc_chomp_strips_tabs_from_body_and_terminator():
    (run,) = dockerfile("RUN <<-EOT sh\n\t\techo a\n\techo b\n\tEOT\n")
    assert isinstance(run, ins.Run)
    assert run.heredocs == (Heredoc("EOT", "echo a\necho b\n", expand=True, chomp=True),)


@pytest.mark.parametrize("opener", ['<<"EOF"', "<<'EOF'", '<<E"O"F', '<<-"EOF"'])
def test_quoted_heredoc_name_disables_expansion(opener):
    (run,) = dockerfile(f"RUN {opener} cat\n$HOME\nEOF\n")
    assert isinstance(run, ins.Run)
    assert len(run.heredocs) == 1
    assert run.heredocs[0].name == "EOF"
    assert run.heredocs[0].expand is False


def test_several_heredocs_on_one_line_in_order():
    (run,) = dockerfile(
        """
        RUN cat <<FILE1 > /file1 && 3<<FILE2 cat > /file2
        I am
        first
        FILE1
        I am
        second
        FILE2
        FROM next
        """
    )[:1]
    assert isinstance(run, ins.Run)
    assert [(h.name, h.content, h.fd) for h in run.heredocs] == [
        ("FILE1", "I am\nfirst\n", 0),
        ("FILE2", "I am\nsecond\n", 3),
    ]
    assert run.end_line == 7


def test_copy_heredoc_becomes_inline_source():
    parsed = dockerfile(
        """
        COPY <<EOF /etc/app.conf
        port=$PORT
        EOF
        COPY <<'RAW' ./a.txt /dst/
        $literal
        RAW
        """
    )
    first, second = parsed
    assert isinstance(first, ins.Copy) and isinstance(second, ins.Copy)
    assert first.sources == () and first.dest == "/etc/app.conf"
    assert first.contents == (ins.SourceContent("EOF", "port=$PORT\n", expand=True),)
    assert second.sources == ("./a.txt",)
    assert second.contents == (ins.SourceContent("RAW", "$literal\n", expand=False),)


def test_heredoc_body_keeps_line_endings_verbatim():
    (run,) = parse("RUN <<EOF\r\nline one\r\nEOF\r\n").instructions
    assert isinstance(run, ins.Run)
    assert run.heredocs[0].content == "line one\r\n"
    (last,) = parse("RUN <<EOF\nno newline at the end\nEOF").instructions
    assert isinstance(last, ins.Run) and last.heredocs[0].content == "no newline at the end\n"


def test_json_form_never_opens_heredocs():
    (run,) = dockerfile('RUN ["cat", "<<EOF"]\n')
    assert isinstance(run, ins.Run) and run.heredocs == ()
    # So the would-be body is read as instructions of its own.
    with pytest.raises(DockerfileError, match="line 2: unknown instruction: EOF"):
        parse('RUN ["cat", "<<EOF"]\nEOF\n')


def test_onbuild_trigger_with_heredoc():
    (onbuild,) = dockerfile(
        """
        ONBUILD RUN <<EOF
        echo triggered
        EOF
        """
    )
    assert isinstance(onbuild, ins.Onbuild)
    assert onbuild.expression == "RUN <<EOF\necho triggered\nEOF"
    assert isinstance(onbuild.trigger, ins.Run)
    assert onbuild.trigger.heredocs == (Heredoc("EOF", "echo triggered\n", expand=True, chomp=False),)
    assert (onbuild.line, onbuild.end_line) == (1, 3)


def test_unbalanced_quote_means_no_heredoc():
    # BuildKit ignores the lexing error of the line: no heredoc opens, the body lines are instructions.
    with pytest.raises(DockerfileError, match="line 3: unknown instruction: x"):
        parse("FROM a\nRUN <<'EOF\nx\nEOF\n")


def test_empty_run_and_cmd_are_accepted():
    run, cmd = dockerfile("RUN\nCMD []\n")
    assert isinstance(run, ins.Run) and (run.command, run.json_form) == ((), False)
    assert isinstance(cmd, ins.Cmd) and (cmd.command, cmd.json_form) == ((), True)


def test_heredoc_needs_run_copy_or_add():
    parsed = dockerfile("LABEL a=<<EOF\nFROM x\n")
    assert [i.keyword for i in parsed] == ["LABEL", "FROM"]


def test_exec_and_shell_forms():
    cmd, entrypoint, run, fallback = dockerfile(
        """
        CMD ["nginx", "-g", "daemon off;"]
        ENTRYPOINT /docker-entrypoint.sh
        RUN ["/bin/sh", "-c", "echo $HOME"]
        CMD [ "unterminated
        """
    )
    assert isinstance(cmd, ins.Cmd) and (cmd.command, cmd.json_form) == (("nginx", "-g", "daemon off;"), True)
    assert isinstance(entrypoint, ins.Entrypoint)
    assert (entrypoint.command, entrypoint.json_form) == (("/docker-entrypoint.sh",), False)
    assert isinstance(run, ins.Run) and run.json_form and run.command[2] == "echo $HOME"
    # Invalid JSON is not an error: Docker runs it as a shell command.
    assert isinstance(fallback, ins.Cmd)
    assert (fallback.command, fallback.json_form) == (('[ "unterminated',), False)


def test_text_after_the_json_array_is_ignored():
    # Go's json.Decoder reads one value (line_parsers.go parseJSON): still exec form.
    (cmd,) = dockerfile('CMD ["echo", "hi"] trailing words\n')
    assert isinstance(cmd, ins.Cmd) and (cmd.command, cmd.json_form) == (("echo", "hi"), True)


def test_copy_and_add_flags():
    copy, add = dockerfile(
        """
        COPY --chown=app:app --chmod=0644 --link --parents --exclude=*.md ["a b", "c", "/dst/"]
        ADD --checksum=sha256:abc --keep-git-dir=true --chown=1 https://example.com/x.tgz /x
        """
    )
    assert isinstance(copy, ins.Copy)
    assert copy.json_form and copy.sources == ("a b", "c") and copy.dest == "/dst/"
    assert (copy.chown, copy.chmod, copy.link, copy.parents, copy.excludes) == (
        "app:app",
        "0644",
        True,
        True,
        ("*.md",),
    )
    assert isinstance(add, ins.Add)
    assert (add.checksum, add.keep_git_dir, add.chown, add.link) == ("sha256:abc", True, "1", False)


def test_env_both_forms_and_quotes_kept_for_expansion():
    new, legacy, escaped = dockerfile(
        """
        ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy
        ENV JAVA_HOME /usr/lib/jvm/java 17
        ENV greeting='hello  world' empty=
        """
    )
    assert isinstance(new, ins.Env)
    assert new.pairs == (
        ins.KeyValue("MY_NAME", '"John Doe"'),
        ins.KeyValue("MY_DOG", "Rex\\ The\\ Dog"),
        ins.KeyValue("MY_CAT", "fluffy"),
    )
    assert isinstance(legacy, ins.Env) and legacy.pairs == (ins.KeyValue("JAVA_HOME", "/usr/lib/jvm/java 17"),)
    assert isinstance(escaped, ins.Env)
    assert escaped.pairs == (ins.KeyValue("greeting", "'hello  world'"), ins.KeyValue("empty", ""))


def test_label_expose_volume_user_workdir_stopsignal_maintainer():
    label, expose, vol_json, vol_list, user, workdir, stop, maint = dockerfile(
        """
        LABEL org.opencontainers.image.title="My app" version=1.0
        EXPOSE 80/tcp 443 53/udp
        VOLUME ["/data", "/logs"]
        VOLUME /var/lib/a /var/lib/b
        USER app:app
        WORKDIR /srv/my app
        STOPSIGNAL SIGQUIT
        MAINTAINER Jane <jane@example.com>
        """
    )
    assert isinstance(label, ins.Label)
    assert label.pairs == (ins.KeyValue("org.opencontainers.image.title", '"My app"'), ins.KeyValue("version", "1.0"))
    # BuildKit sorts EXPOSE's ports.
    assert isinstance(expose, ins.Expose) and expose.ports == ("443", "53/udp", "80/tcp")
    assert isinstance(vol_json, ins.Volume) and (vol_json.paths, vol_json.json_form) == (("/data", "/logs"), True)
    assert isinstance(vol_list, ins.Volume) and vol_list.paths == ("/var/lib/a", "/var/lib/b")
    assert isinstance(user, ins.User) and user.user == "app:app"
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/srv/my app"
    assert isinstance(stop, ins.StopSignal) and stop.signal == "SIGQUIT"
    assert isinstance(maint, ins.Maintainer) and maint.name == "Jane <jane@example.com>"


def test_healthcheck_variants():
    none, shell, exec_form = dockerfile(
        """
        HEALTHCHECK NONE
        HEALTHCHECK --interval=1m30s --timeout=10s --start-period=5s --start-interval=500ms --retries=3 \\
            CMD curl -f http://localhost/ || exit 1
        HEALTHCHECK CMD ["/bin/check", "--fast"]
        """
    )
    assert isinstance(none, ins.Healthcheck) and none.test == ("NONE",)
    assert isinstance(shell, ins.Healthcheck)
    assert shell.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert (shell.interval_ns, shell.timeout_ns, shell.start_period_ns, shell.start_interval_ns, shell.retries) == (
        90 * 10**9,
        10 * 10**9,
        5 * 10**9,
        500 * 10**6,
        3,
    )
    assert isinstance(exec_form, ins.Healthcheck) and exec_form.test == ("CMD", "/bin/check", "--fast")
    assert exec_form.interval_ns == 0


def test_onbuild_keeps_expression_and_parses_trigger():
    (onbuild,) = dockerfile("onbuild COPY --chown=1 . /app/src\n")
    assert isinstance(onbuild, ins.Onbuild)
    assert onbuild.expression == "COPY --chown=1 . /app/src"
    assert isinstance(onbuild.trigger, ins.Copy) and onbuild.trigger.chown == "1"


def test_shell_instruction():
    (shell,) = dockerfile('SHELL ["powershell", "-command"]\n')
    assert isinstance(shell, ins.Shell) and shell.shell == ("powershell", "-command")


def test_crlf_and_bom_are_tolerated():
    parsed = parse("\ufeffFROM a\r\nRUN echo \\\r\n  hi\r\n").instructions
    assert isinstance(parsed[1], ins.Run) and parsed[1].command == ("echo   hi",)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM a\n\nFOO bar\n", 3, "unknown instruction: FOO"),
        ("FROM a\nfoo bar\n", 2, "unknown instruction: foo"),
        ("FROM a\nENV =x\n", 2, "ENV names can not be blank"),
        ("FROM a\nENV onlyname\n", 2, "ENV must have two arguments"),
        ("FROM a\nENV a=b c\n", 2, 'Syntax error - can\'t find = in "c". Must be of the form: name=value'),
        ("FROM a b\n", 1, "FROM requires either one or three arguments"),
        ("FROM a AS 1st\n", 1, 'invalid name for build stage: "1st"'),
        ("FROM a\nSHELL /bin/bash -c\n", 2, "SHELL requires the arguments to be in JSON form"),
        ("FROM a\nCMD [1, 2]\n", 2, "arrays must be comprised of strings only"),
        ("FROM a\nCOPY onlyone\n", 2, "COPY requires at least two arguments"),
        ("FROM a\nCOPY x <<EOF\nhi\nEOF\n", 2, "COPY cannot accept a heredoc as a destination"),
        ("FROM a\nCOPY --foo=1 a b\n", 2, "unknown flag: foo"),
        ("FROM a\nCOPY --link=maybe a b\n", 2, "expecting boolean value for flag link, not: maybe"),
        ("FROM a\nCOPY --from a b\n", 2, "missing a value on flag: from"),
        ("FROM a\nRUN --network=bridge x\n", 2, 'network mode "bridge" not supported'),
        ("FROM a\nRUN --mount=type=nfs,target=/x x\n", 2, 'unsupported mount type "nfs"'),
        ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FROM a\nONBUILD FROM x\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
        ("FROM a\nONBUILD MAINTAINER x\n", 2, "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("FROM a\nONBUILD BOGUS x\n", 2, "unknown instruction: BOGUS"),
        ("FROM a\nHEALTHCHECK NONE extra\n", 2, "HEALTHCHECK NONE takes no arguments"),
        ("FROM a\nHEALTHCHECK CMD\n", 2, "Missing command after HEALTHCHECK CMD"),
        ("FROM a\nHEALTHCHECK TEST x\n", 2, 'Unknown type "TEST" in HEALTHCHECK (try CMD)'),
        ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, "--retries cannot be negative (-1)"),
        ("FROM a\nHEALTHCHECK --interval=10 CMD x\n", 2, 'missing unit in duration "10"'),
        ("FROM a\nHEALTHCHECK --interval=10us CMD x\n", 2, 'Interval "interval" cannot be less than 1ms'),
        ("FROM a\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
        ("FROM a\nEXPOSE\n", 2, "EXPOSE requires at least one argument"),
        ('FROM a\nVOLUME [""]\n', 2, "VOLUME specified can not be an empty string"),
        ("FROM a\nARG =x\n", 2, "ARG names can not be blank"),
        ("FROM a\n\nRUN <<EOF\nnever ends\n", 3, "unterminated heredoc"),
        ("# escape=x\nFROM a\n", 1, "invalid escape token 'x' does not match ` or \\"),
        ("# escape=`\n# escape=\\\nFROM a\n", 2, "only one escape parser directive can be used"),
    ],
)
def test_errors_name_the_line(text, line, message):
    with pytest.raises(DockerfileError) as caught:
        parse(text)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"dockerfile parse error on line {line}: ")
    assert message in str(caught.value)


def test_empty_dockerfile_is_an_error():
    with pytest.raises(DockerfileError, match="the Dockerfile cannot be empty"):
        parse("")


@pytest.mark.parametrize("text", ["\n\n", "# only a comment\n", "# syntax=docker/dockerfile:1\n\n  \n", "\ufeff"])
def test_dockerfile_without_instructions_is_an_error(text):
    with pytest.raises(DockerfileError, match="file with no instructions"):
        parse(text)

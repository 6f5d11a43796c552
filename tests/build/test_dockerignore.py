""".dockerignore semantics (moby/patternmatcher), checked on tables, on a real tree, and against docker-py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from engine.build.dockerignore import ContextFilter, go_clean, read_patterns
from engine.build.errors import DockerignoreError


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [("", "."), ("a//b/./c/", "a/b/c"), ("/../a", "/a"), ("../a/..", ".."), ("a/b/../../..", ".."), ("/", "/")],
)
def test_go_clean(path, cleaned):
    assert go_clean(path) == cleaned


def test_read_patterns_comments_whitespace_and_cleaning():
    text = "\ufeff# comment\n\n   \n  spaced  \n  # not a comment\n/abs/../tmp/\n! /neg//x\n!\n./.\n"
    assert read_patterns(text) == ["spaced", "# not a comment", "tmp", "!neg/x", "!", "."]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),  # "*" does not cross "/"
        (["*/*.md"], "docs/README.md", True),
        (["**/*.md"], "README.md", True),  # "**/" matches zero directories too
        (["**/*.md"], "a/b/c/README.md", True),
        (["a/**/b"], "a/b", True),
        (["a/**/b"], "a/x/y/b", True),
        (["a/**/b"], "a/x/y/bc", False),
        (["**"], "anything/at/all", True),
        (["**foo"], "xfoo", True),  # leading "**" without "/" is a plain suffix (patternmatcher suffixMatch)
        (["foo**"], "foobar/baz", True),  # trailing "**" is a plain prefix
        (["?.txt"], "a.txt", True),
        (["?.txt"], "ab.txt", False),
        (["[a-c].txt"], "b.txt", True),
        (["[a-c].txt"], "d.txt", False),
        (["[^a-c].txt"], "d.txt", True),
        (["\\*.txt"], "*.txt", True),
        (["[[]x"], "[x", True),  # "[" inside a class is literal, as in Go
        (["[a&&b]"], "&", True),
        (["\\*.txt"], "a.txt", False),
        (["file.(1)"], "file.(1)", True),  # regexp metacharacters are literal
        (["a+b{c}$"], "a+b{c}$", True),
        (["build"], "build/out/x.o", True),  # a matching parent excludes everything below
        (["build"], "src/build", False),  # patterns are anchored at the context root
        (["/build/"], "build/x", True),  # leading and trailing "/" are cleaned away
        (["a/../b"], "b/file", True),
        (["*", "!keep"], "keep", False),
        (["*", "!keep", "keep"], "keep", True),  # the last matching pattern wins
        (["logs", "!logs/important.log"], "logs/important.log", False),
        (["logs", "!logs/important.log"], "logs/other.log", True),
        (["logs/**", "!logs/important.log"], "logs/important.log", False),
        (["secret", "!secret/public"], "secret/public/deep/file", False),  # exception matching a parent
        (["**/*.log", "!**/keep.log"], "a/b/keep.log", False),
    ],
)
def test_pattern_table(patterns, path, excluded):
    # Through the file reader, as the builder does: it cleans and strips the leading "/".
    assert ContextFilter(read_patterns("\n".join(patterns)), dockerfile=None).excluded(path) is excluded


def test_dockerfile_and_dockerignore_always_sent():
    context = ContextFilter(["*", "!src"], dockerfile="docker/app.Dockerfile")
    assert not context.excluded(".dockerignore")
    assert not context.excluded("docker/app.Dockerfile")
    assert context.excluded("docker/other")
    assert context.excluded("Dockerfile")  # only the Dockerfile actually used is forced in


def test_filter_from_a_real_ignore_file(tmp_path):
    make_tree(tmp_path, ["docker/Dockerfile", "docker/notes.txt", "src/app.py", "tmp/cache"])
    (tmp_path / ".dockerignore").write_text("# build context\ndocker\ntmp/\n.dockerignore\n")
    context = ContextFilter.from_file_text((tmp_path / ".dockerignore").read_text(), dockerfile="docker/Dockerfile")
    assert context.walk(tmp_path) == [".dockerignore", "docker", "docker/Dockerfile", "src", "src/app.py"]


def test_bad_patterns_are_errors():
    with pytest.raises(DockerignoreError, match='illegal exclusion pattern: "!"'):
        ContextFilter(["!"])
    with pytest.raises(DockerignoreError, match="syntax error in pattern"):
        ContextFilter(["[unclosed"])
    with pytest.raises(DockerignoreError, match="syntax error in pattern"):
        ContextFilter(["trailing\\"])


def test_context_root_is_never_excluded():
    assert not ContextFilter(["*", "**"], dockerfile=None).excluded(".")


def make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


TREE = [
    "Dockerfile",
    ".dockerignore",
    "README.md",
    "app/main.py",
    "app/main.pyc",
    "app/lib/util.py",
    "app/lib/__pycache__/util.cpython-311.pyc",
    "docs/guide.md",
    "docs/img/logo.png",
    "node_modules/left-pad/index.js",
    "node_modules/left-pad/package.json",
    "logs/2024/app.log",
    "logs/keep.log",
    "secret/key.pem",
    "secret/public/cert.pem",
    "build/out/app",
]


def test_walk_real_tree_with_reinclusion_inside_excluded_dirs(tmp_path):
    make_tree(tmp_path, TREE)
    (tmp_path / "empty").mkdir()
    (tmp_path / "app" / "link").symlink_to(tmp_path / "docs")
    patterns = read_patterns(
        "\n".join(
            [
                "# dependencies",
                "node_modules",
                "**/__pycache__",
                "*.md",
                "**/*.pyc",
                "logs",
                "!**/keep.log",  # re-included from inside an excluded directory (only a wildcard exception)
                "secret",
                "!secret/public",
                "build/",
                "Dockerfile",  # ignored but still sent
                ".dockerignore",
            ]
        )
    )
    walked = ContextFilter(patterns).walk(tmp_path)
    assert walked == [
        ".dockerignore",
        "Dockerfile",
        "app",
        "app/lib",
        "app/lib/util.py",
        "app/link",  # symlinks are listed, not followed
        "app/main.py",
        "docs",
        "docs/guide.md",  # "*.md" is anchored at the root: only README.md goes
        "docs/img",
        "docs/img/logo.png",
        "empty",
        "logs",  # excluded, but sent as the parent of a re-included file
        "logs/keep.log",
        "secret",
        "secret/public",
        "secret/public/cert.pem",
    ]


def test_walk_skips_excluded_dirs_without_possible_exceptions(tmp_path, monkeypatch):
    make_tree(tmp_path, ["big/a/b/c", "small/x", "wild/y"])
    opened: list[str] = []
    real_scandir = os.scandir

    def recording_scandir(path):
        opened.append(os.path.relpath(path, tmp_path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", recording_scandir)
    context = ContextFilter(["big", "wild", "!small/x", "!wild/z*"], dockerfile=None)
    assert context.walk(tmp_path) == ["small", "small/x"]  # wild holds no z*: it is not sent
    # "big" is never opened: no exception could re-include anything below it; "wild" could hold a z*.
    assert sorted(opened) == [".", "small", "wild"]


# Cases where docker-py's exclude_paths and moby agree: the walks must be equal.
AGREEING = [
    [],
    ["node_modules", "*.md"],
    ["**/*.pyc", "**/__pycache__"],
    ["*", "!app"],
    ["app", "!app/lib/util.py"],
    ["secret", "!secret/public"],
    ["logs/**", "!logs/keep.log"],
    ["docs/*.md", "build"],
    ["*/*", "!docs/img"],
    ["app/l?b"],
    ["[ab]*"],
]


@pytest.mark.parametrize("patterns", AGREEING, ids=lambda p: ",".join(p) or "none")
def test_walk_matches_docker_py(tmp_path, patterns):
    make_tree(tmp_path, TREE)
    context = ContextFilter(patterns)
    walked = set(context.walk(tmp_path))
    # docker-py leaves out the excluded parents of re-included files; BuildKit sends them.
    ours = {path for path in walked if not context.excluded(path)}
    theirs = exclude_paths(str(tmp_path), list(patterns))
    assert ours == theirs
    assert walked - ours == {parent for path in ours for parent in _parents(path)} - ours


def _parents(path: str) -> set[str]:
    parts = path.split("/")
    return {"/".join(parts[:i]) for i in range(1, len(parts))}


def test_known_difference_with_docker_py_deep_parent_match(tmp_path):
    """docker-py checks only the parent prefix as long as the pattern; moby checks every parent.

    ``**/secret`` must exclude ``a/b/secret/key`` (moby MatchesOrParentMatches:
    the parent ``a/b/secret`` matches).  The exception makes both walks look
    inside ``a/b/secret``.  We follow moby.
    """
    make_tree(tmp_path, ["a/b/secret/key", "a/b/secret/x", "a/b/other"])
    patterns = ["**/secret", "!a/b/secret/x"]
    ours = set(ContextFilter(patterns).walk(tmp_path))
    theirs = exclude_paths(str(tmp_path), list(patterns))
    assert ours == {"a", "a/b", "a/b/other", "a/b/secret", "a/b/secret/x"}
    assert theirs == (ours - {"a/b/secret"}) | {"a/b/secret/key"}


def test_known_difference_with_docker_py_wildcard_exception(tmp_path):
    """A wildcard exception re-includes files inside an excluded directory.

    BuildKit's walker (tonistiigi/fsutil) descends into an excluded directory
    when an exception has wildcards; docker-py (and the classic builder's
    archive walk) only descends when an exception starts with the directory
    path.  We follow BuildKit, the default builder.
    """
    make_tree(tmp_path, ["logs/2024/app.log", "logs/keep.log"])
    ours = set(ContextFilter(["logs", "!**/keep.log"]).walk(tmp_path))
    theirs = exclude_paths(str(tmp_path), ["logs", "!**/keep.log"])
    assert ours == {"logs", "logs/keep.log"}
    assert "logs/keep.log" not in theirs

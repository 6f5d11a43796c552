"""Variable substitution (BuildKit's shell lexer semantics), one row per operator and quoting rule."""

from __future__ import annotations

import pytest

from engine.build.errors import ExpansionError
from engine.build.expand import LexOptions, process_word, process_words

ENV = {"SET": "value", "EMPTY": "", "SPACED": "a  b", "PATH": "/usr/bin"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$SET", "value"),
        ("${SET}", "value"),
        ("pre${SET}post", "prevaluepost"),
        ("$SETpost", ""),  # the name runs as long as letters/digits/_ go
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("${SET:-default}", "value"),
        ("${EMPTY:-default}", "default"),
        ("${UNSET:-default}", "default"),
        ("${SET-default}", "value"),
        ("${EMPTY-default}", ""),  # without ":" only unset triggers the default
        ("${UNSET-default}", "default"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${SET+alt}", "alt"),
        ("${EMPTY+alt}", "alt"),  # without ":" set-but-empty counts as set
        ("${UNSET+alt}", ""),
        ("${SET:?must be set}", "value"),
        ("${EMPTY?msg}", ""),
        ("${UNSET:-$SET}", "value"),  # the operand is itself expanded
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-a b}", "a b"),
        ("\\$SET", "$SET"),  # escaped dollar
        ("\\\\$SET", "\\value"),
        ("'$SET'", "$SET"),  # single quotes keep everything literal
        ('"$SET"', "value"),  # double quotes still expand
        ('"\\$SET"', "$SET"),
        ('"a\\nb"', "a\\nb"),  # unknown escapes inside double quotes keep the backslash
        ('"it\'s"', "it's"),
        ("'a\\b'", "a\\b"),  # nothing escapes inside single quotes
        ('"Rex The Dog"', "Rex The Dog"),
        ("Rex\\ The\\ Dog", "Rex The Dog"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", ""),  # positional parameters do not exist in a Dockerfile
        ("$SPACED", "a  b"),
        ("$PATH:/opt/bin", "/usr/bin:/opt/bin"),
        ("trailing\\", "trailing"),
    ],
)
def test_process_word(word, expected):
    assert process_word(word, ENV) == expected


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${UNSET:?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${UNSET:?you must set it}", "UNSET: you must set it"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${SET", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:-x}", "bad substitution"),
        ("${SET:=x}", "unsupported modifier (=) in substitution"),
        ("'open", "matching single-quote"),
        ('"open', "matching double-quote"),
    ],
)
def test_process_word_errors(word, message):
    with pytest.raises(ExpansionError, match="failed to process") as caught:
        process_word(word, ENV)
    assert message in str(caught.value)


PATTERN_ENV = {"FILE": "archive.tar.gz", "DIR": "/usr/local/bin", "DASHED": "a-b-c", "STAR": "x*y"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("${FILE#*.}", "tar.gz"),  # shortest prefix
        ("${FILE##*.}", "gz"),  # longest prefix
        ("${FILE%.*}", "archive.tar"),  # shortest suffix
        ("${FILE%%.*}", "archive"),  # longest suffix
        ("${DIR#/usr}", "/local/bin"),
        ("${FILE#nomatch}", "archive.tar.gz"),
        ("${UNSET#x}", ""),
        ("${DASHED/-/_}", "a_b-c"),  # first match
        ("${DASHED//-/_}", "a_b_c"),  # every match
        ("${DASHED/[ab]/X}", "X-b-c"),
        ("${DASHED//?/.}", "....."),
        ("${DASHED//[!-]/x}", "x-x-x"),  # [!...] negates, as in sh
        ("${STAR/\\*/+}", "x+y"),  # an escaped star is literal
        ("${DASHED/-/$FILE}", "aarchive.tar.gzb-c"),  # the replacement is expanded
    ],
)
def test_pattern_operators(word, expected):
    assert process_word(word, {**ENV, **PATTERN_ENV}) == expected


def test_backtick_escape():
    options = LexOptions(escape="`")
    assert process_word("`$SET", ENV, options) == "$SET"
    assert process_word("c:\\$SET", ENV, options) == "c:\\value"


def test_process_words_splits_expanded_values_but_not_quoted_text():
    assert process_words("$SPACED 'c  d' \"e $SPACED\" f\\ g", ENV) == ["a", "b", "c  d", "e a  b", "f g"]


def test_empty_quoted_words_are_dropped_like_buildkit():
    assert process_words('a "" b', ENV) == ["a", "b"]
    assert process_words('x""y $EMPTY', ENV) == ["xy"]


def test_raw_quotes_keep_quote_characters():
    assert process_word("'$SET' \"x\"", ENV, LexOptions(raw_quotes=True)) == "'$SET' \"x\""


def test_skip_quotes_treats_quotes_as_text():
    assert process_word("echo '$SET' \"$SET\"", ENV, LexOptions(skip_quotes=True)) == "echo 'value' \"value\""

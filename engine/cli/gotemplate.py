"""A subset of Go's text/template, for `--format` strings written for docker.

Covers what everyday scripts use: field chains (`{{.State.Status}}`), `.`/`$`,
pipelines (`{{.Names | json}}`), functions docker adds (`json`, `join`,
`index`, `upper`, `lower`, `title`, `split`, `len`, `printf`, `println`,
`pad`, `truncate`), `range` (with `$k, $v :=`), `if`/`else if`/`else`, `with`,
trim markers (`{{-`, `-}}`) and Go's value printing (`map[a:b]`, `[x y]`,
`<no value>`).  Errors name the position, like Go's "template: :1:3: ...".
"""

from __future__ import annotations

from _collections_abc import Mapping  # collections.abc would import collections (~2 ms): the fast path uses this

from engine.cli.gojson import dumps
from engine.cli.rows import go_quote

TYPE_CHECKING = False  # not typing's: the template engine is on the fast path (engine/cli/fast.py)
if TYPE_CHECKING:
    import re
    from collections.abc import Callable
    from typing import Any


class TemplateError(Exception):
    """A template that cannot be parsed or executed."""


class _ExecError(TemplateError):
    """An execution error at a node: Go names its line:column and its text (`at <index .Args 5>`)."""

    def __init__(self, message: str, pos: int, text: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.text = text


PARSE_ERROR = "template parsing error: "  # how docker's inspect/version word a template that does not parse


_MISSING = object()


# ---------------------------------------------------------------- lexing
# By hand, not with `re`: importing and compiling it was most of what a --format cost the fast path.
# The scanners match what these patterns match (tests/cli/test_gotemplate.py checks them against re):
ACTION_PATTERN = r"\{\{(-\s)?(.*?)(\s-)?\}\}"  # re.S
TOKEN_PATTERN = r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*") |
    (?P<raw>`[^`]*`) |
    (?P<num>-?\d+(?:\.\d+)?) |
    (?P<field>(?:\$\w*)?(?:\.\w+)+|\.) |
    (?P<var>\$\w*) |
    (?P<assign>:=) |
    (?P<punct>[|(),]) |
    (?P<ident>[A-Za-z_]\w*)
)"""  # re.X


class _Action:
    """One `{{...}}`: where it starts and ends, its body's span, and its trim markers."""

    __slots__ = ("body_end", "body_start", "end", "start", "trim_left", "trim_right")

    def __init__(self, start: int, body_start: int, body_end: int, end: int, trim_left: bool,
                 trim_right: bool) -> None:
        self.start, self.body_start, self.body_end, self.end = start, body_start, body_end, end
        self.trim_left, self.trim_right = trim_left, trim_right


def _actions(source: str) -> list[_Action]:
    """Every action, as ACTION_PATTERN's finditer finds them."""
    found: list[_Action] = []
    pos = 0
    while (start := source.find("{{", pos)) >= 0:
        body_start = start + 2
        trim_left = source.startswith("-", body_start) and body_start + 1 < len(source) and \
            source[body_start + 1].isspace()
        if trim_left:
            body_start += 2
        close = source.find("}}", body_start)
        if close < 0:
            break
        trim_right = close - 2 >= body_start and source[close - 1] == "-" and source[close - 2].isspace()
        found.append(_Action(start, body_start, close - 2 if trim_right else close, close + 2, trim_left,
                             trim_right))
        pos = close + 2
    return found


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _word_end(source: str, pos: int) -> int:
    while pos < len(source) and _is_word(source[pos]):
        pos += 1
    return pos


def _digits_end(source: str, pos: int) -> int:
    while pos < len(source) and source[pos].isdecimal():
        pos += 1
    return pos


def _quoted_end(source: str, pos: int) -> int:
    """End of the "..." string at `pos` (escapes: a backslash and any character but a newline), or -1."""
    pos += 1
    while pos < len(source):
        if source[pos] == '"':
            return pos + 1
        if source[pos] == "\\":
            if pos + 1 >= len(source) or source[pos + 1] == "\n":
                return -1
            pos += 1
        pos += 1
    return -1


def _fields_end(source: str, pos: int) -> int:
    """End of one or more `.word` from `pos` (pos itself when there is none)."""
    while source.startswith(".", pos) and pos + 1 < len(source) and _is_word(source[pos + 1]):
        pos = _word_end(source, pos + 1)
    return pos


def _token_at(source: str, pos: int) -> tuple[str, int] | None:
    """The kind and end of the token that starts at `pos` (TOKEN_PATTERN's alternatives, in order), or None."""
    char = source[pos]
    if char == '"':
        end = _quoted_end(source, pos)
        return ("str", end) if end > 0 else None
    if char == "`":
        end = source.find("`", pos + 1)
        return ("raw", end + 1) if end > 0 else None
    digits = pos + 1 if char == "-" else pos
    if digits < len(source) and source[digits].isdecimal():
        end = _digits_end(source, digits)
        if source.startswith(".", end) and end + 1 < len(source) and source[end + 1].isdecimal():
            end = _digits_end(source, end + 1)
        return "num", end
    if char in "$.":
        var_end = _word_end(source, pos + 1) if char == "$" else pos
        end = _fields_end(source, var_end)
        if end > var_end:
            return "field", end
        return ("var", var_end) if char == "$" else ("field", pos + 1)
    if source.startswith(":=", pos):
        return "assign", pos + 2
    if char in "|(),":
        return "punct", pos + 1
    if char.isascii() and (char.isalpha() or char == "_"):
        return "ident", _word_end(source, pos + 1)
    return None


class Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class Action:
    __slots__ = ("declare", "pipeline")

    def __init__(self, pipeline: list[Command], declare: list[str] | None = None) -> None:
        self.pipeline = pipeline
        self.declare = declare or []


class Block:
    __slots__ = ("body", "declare", "kind", "otherwise", "pipeline")

    def __init__(self, kind: str, pipeline: list[Command], declare: list[str], body: list[Any]) -> None:
        self.kind = kind  # range | if | with
        self.pipeline = pipeline
        self.declare = declare
        self.body = body
        self.otherwise: list[Any] = []


class Field:
    __slots__ = ("names", "pos", "text", "var")

    def __init__(self, var: str, names: tuple[str, ...], pos: int = 0, text: str = "") -> None:
        self.var = var  # "" for the dot, "$" or "$name" for variables
        self.names = names
        # Go's position for a chain (`.State.Pid`) is its second element's; for one field, the field's.
        chain = len(var) if var else (1 + len(names[0]) if len(names) > 1 else 0)
        self.pos = pos + chain
        self.text = text


class Ident:
    __slots__ = ("name", "pos")

    def __init__(self, name: str, pos: int = 0) -> None:
        self.name = name
        self.pos = pos


class Command(list):  # type: ignore[type-arg]  # [head, *args], as before
    """One command of a pipeline, with what Go's errors show of it: its offset and its text."""

    def __init__(self, pos: int) -> None:
        super().__init__()
        self.pos = pos
        self.words: list[str] = []

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _tokens(source: str, base: int = 0) -> list[tuple[str, str, int]]:
    """(kind, text, offset in the whole template) of each token; `base` is `source`'s offset."""
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(source):
        if not source[pos:].strip():
            break
        while source[pos].isspace():
            pos += 1
        found = _token_at(source, pos)
        if found is None:
            raise TemplateError(f"unexpected {source[pos:].strip()[:10]!r} in command")
        kind, end = found
        out.append((kind, source[pos:end], base + pos))
        pos = end
    return out


def _parse_pipeline(tokens: list[tuple[str, str, int]]) -> tuple[list[str], list[Command]]:
    declare: list[str] = []
    if "assign" in (k for k, _, _ in tokens):
        idx = [k for k, _, _ in tokens].index("assign")
        declare = [v for k, v, _ in tokens[:idx] if k == "var"]
        tokens = tokens[idx + 1:]
    commands: list[Command] = []
    depth_stack: list[list[Command]] = []
    for n, (kind, value, pos) in enumerate(tokens):
        if not commands or (kind == "punct" and value == "|"):
            following = tokens[n + 1][2] if kind == "punct" and n + 1 < len(tokens) else pos
            commands.append(Command(following))
        if kind == "punct" and value == "|":
            continue
        if kind == "punct" and value == ",":
            continue
        if kind == "punct" and value == "(":
            depth_stack.append(commands)
            commands = []
            continue
        if kind == "punct" and value == ")":
            if not depth_stack:
                raise TemplateError("unexpected right paren")
            inner = commands
            commands = depth_stack.pop()
            commands[-1].append(("pipe", inner))
            commands[-1].words.append("(" + " | ".join(c.text for c in inner) + ")")
            continue
        commands[-1].words.append(value)
        if kind == "str":
            import _json  # json's C string scanner: json itself imports re

            try:
                commands[-1].append(_json.scanstring(value, 1)[0])
            except ValueError:
                raise TemplateError(f"invalid syntax: {value}") from None
        elif kind == "raw":
            commands[-1].append(value[1:-1])
        elif kind == "num":
            commands[-1].append(float(value) if "." in value else int(value))
        elif kind == "field":
            var, _, rest = value.partition(".") if value.startswith("$") else ("", "", value[1:])
            commands[-1].append(Field(var, tuple(n for n in rest.split(".") if n), pos, value))
        elif kind == "var":
            commands[-1].append(Field(value, (), pos, value))
        elif kind == "ident":
            if value in ("true", "false"):
                commands[-1].append(value == "true")
            elif value == "nil":
                commands[-1].append(None)
            elif value not in FUNCTIONS and value != "index":
                raise TemplateError(f'function "{value}" not defined')  # Go checks names at parse time
            else:
                commands[-1].append(Ident(value, pos))
    if depth_stack:
        raise TemplateError("unclosed left paren")
    if not commands or any(not c for c in commands):
        raise TemplateError("missing value for command")
    return declare, commands


def parse(source: str) -> list[Any]:
    root: list[Any] = []
    stack: list[tuple[Block | None, list[Any]]] = [(None, root)]
    pos = 0
    trim_next = False
    for action in _actions(source):
        text = source[pos:action.start]
        if trim_next:
            text = text.lstrip()
        if action.trim_left:
            text = text.rstrip()
        if text:
            stack[-1][1].append(Text(text))
        trim_next = action.trim_right
        pos = action.end
        raw_body = source[action.body_start:action.body_end]
        body = raw_body.strip()
        at = action.body_start + len(raw_body) - len(raw_body.lstrip())  # body's offset
        if body.startswith("/*"):
            continue
        word, _, rest = body.partition(" ")
        if word in ("range", "if", "with"):
            declare, pipeline = _parse_pipeline(_tokens(rest, at + len(word) + 1))
            block = Block(word, pipeline, declare, [])
            stack[-1][1].append(block)
            stack.append((block, block.body))
        elif word == "else":
            current = stack[-1][0]
            if current is None:
                raise TemplateError("unexpected {{else}}")
            if rest.startswith("if "):
                # `else if` is an `if` nested in the else branch that shares the `end`.
                declare, pipeline = _parse_pipeline(_tokens(rest[3:], at + len(word) + 4))
                nested = Block("elif", pipeline, declare, [])
                current.otherwise.append(nested)
                stack[-1] = (nested, nested.body)
            else:
                stack[-1] = (current, current.otherwise)
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError("unexpected {{end}}")
            stack.pop()
        else:
            declare, pipeline = _parse_pipeline(_tokens(body, at))
            stack[-1][1].append(Action(pipeline, declare))
    tail = source[pos:]
    if "{{" in tail:
        raise TemplateError("unclosed action")
    if trim_next:
        tail = tail.lstrip()
    if tail:
        stack[-1][1].append(Text(tail))
    if len(stack) != 1:
        raise TemplateError("unexpected EOF")  # Go's words for a missing {{end}}
    return root


# ---------------------------------------------------------------- printing like Go's fmt %v
def go_str(value: Any) -> str:
    if value is _MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def _truthy(value: Any) -> bool:
    return value not in (None, _MISSING, False, 0, "") and not (
        isinstance(value, Mapping | list | tuple) and len(value) == 0
    )


_VERB = r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])"  # compiled by printf, the one user of re here


def _go_type(value: Any) -> str:
    """fmt's %T for the values JSON decoding gives a template (Go decodes into interface{})."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"  # inspect data is typed in Go: counters and sizes are ints
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return "<nil>"


def _verb(flags: str, width: str | None, precision: str | None, verb: str, value: Any) -> str:
    # Go pads on the left unless `-`; `0` zero-pads numbers; `+` always signs them.
    align = "<" if "-" in flags else ">"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and verb in "dxXobeEfFgG":
        fill = "0" if "0" in flags and "-" not in flags else ""
        sign = "+" if "+" in flags else ""
        prec = f".{precision}" if precision is not None and verb in "eEfFgG" else ""
        kind = verb if verb != "d" else "d"
        converted = int(value) if verb in "dxXob" else float(value)
        return format(converted, f"{'' if fill else align}{sign}{fill}{width or ''}{prec}{kind}")
    if verb == "x" and isinstance(value, str):
        text = value.encode().hex()
    elif verb == "q":
        text = dumps(go_str(value), ensure_ascii=False)
    elif (verb == "t" and isinstance(value, bool)) or verb in "vs":
        text = go_str(value)
        if precision is not None:
            text = text[:int(precision)]
    elif verb == "T":
        text = _go_type(value)
    else:
        return f"%!{verb}({_go_type(value)}={go_str(value)})"  # Go's way of showing a verb/value mismatch
    return format(text, f"{align}{width or ''}")


def _printf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use: %v %s %d %q %x %f %t %T, flags, width, precision."""
    values = iter(args)
    missing = object()

    def one(match: re.Match[str]) -> str:
        flags, width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        value = next(values, missing)
        if value is missing:
            return f"%!{verb}(MISSING)"
        return _verb(flags, width, precision, verb, value)

    import re

    out = re.sub(_VERB, one, fmt)
    extra = list(values)
    if extra:
        out += "%!(EXTRA " + ", ".join(f"{_go_type(v)}={go_str(v)}" for v in extra) + ")"
    return out


def _title(s: str) -> str:
    """strings.Title: the first letter of every word (words are split by anything but letters and digits)."""
    import re

    return re.sub(r"(?<!\w)\w", lambda m: m.group().upper(), s)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": lambda v: dumps(None if v is _MISSING else v),
    "join": lambda items, sep: sep.join(go_str(i) for i in (items or [])),
    "split": lambda s, sep: s.split(sep),
    "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(),
    "title": lambda s: _title(go_str(s)),
    "len": lambda v: len(v) if v not in (None, _MISSING) else 0,
    "printf": _printf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "pad": lambda s, left, right: " " * int(left) + go_str(s) + " " * int(right),
    "truncate": lambda s, n: go_str(s)[: int(n)],
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "not": lambda a: not _truthy(a),
    "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truthy(x)), a[-1]),
}


def _index(value: Any, *keys: Any) -> Any:
    """Go's `index` builtin over decoded JSON, with its error words (text/template/funcs.go)."""
    for key in keys:
        if value is None or value is _MISSING:
            raise TemplateError("index of untyped nil")
        if isinstance(value, Mapping):
            if not isinstance(key, str):
                raise TemplateError(f"value has type {_go_type(key)}; should be string")
            # A missing key is the map's zero value: "" in docker's typed string maps (labels,
            # options), nothing (`<no value>`) in a map of anything.
            strings = all(isinstance(v, str) for v in value.values())
            value = value.get(key, "" if strings else _MISSING)
        elif isinstance(value, list | tuple | str):
            if isinstance(key, bool) or not isinstance(key, int):
                raise TemplateError(f"cannot index slice/array with type {_go_type(key)}")
            if key < 0 or key > len(value):
                raise TemplateError(f"index out of range: {key}")
            if key == len(value):  # Go checks `> len`, then reflect's Index panics
                kind = "string" if isinstance(value, str) else "slice"
                raise TemplateError(f"reflect: {kind} index out of range")
            value = value.encode()[key] if isinstance(value, str) else value[key]
        else:
            raise TemplateError(f"can't index item of type {_go_type(value)}")
    return value


# ---------------------------------------------------------------- execution
class _Scope:
    def __init__(self, dot: Any, root: Any, variables: dict[str, Any], missing_key_error: bool = False) -> None:
        self.dot = dot
        self.root = root
        self.vars = variables
        self.missing_key_error = missing_key_error

    def inner(self, dot: Any, variables: dict[str, Any]) -> _Scope:
        return _Scope(dot, self.root, variables, self.missing_key_error)


def _lookup(value: Any, names: tuple[str, ...], missing_key_error: bool = False) -> Any:
    for name in names:
        if value is _MISSING:
            return _MISSING
        if isinstance(value, Mapping):
            if name in value:
                value = value[name]
            elif name[:1].isupper() and callable(getattr(type(value), name, None)):
                # A method of a formatter row (`{{.Label "com.example.x"}}`), like Go's method values.
                value = getattr(value, name)
            elif getattr(value, "template_type", None):
                # A row standing for one of docker's typed formatter contexts: no such field is an error.
                raise TemplateError(f"can't evaluate field {name} in type {value.template_type}")  # type: ignore[attr-defined]
            else:
                # JSON key case varies between API versions (Id vs ID); docker's own contexts don't.
                value = next((v for k, v in value.items() if isinstance(k, str) and k.lower() == name.lower()),
                             _MISSING)
                if value is _MISSING and missing_key_error:
                    # docker inspect's raw-JSON fallback runs the template with missingkey=error.
                    raise TemplateError(f"map has no entry for key {go_quote(name)}")
        elif value is None:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
        elif isinstance(value, str | int | float | list | tuple):
            raise TemplateError(f"can't evaluate field {name} in type interface {{}}")
        else:
            value = getattr(value, name, _MISSING)
    return value


def _at(node: Any, exc: TemplateError) -> _ExecError:
    """The error located at `node` (a Field, an Ident or a Command), unless it already is."""
    if isinstance(exc, _ExecError):
        return exc
    return _ExecError(str(exc), node.pos, node.text if not isinstance(node, Ident) else node.name)


def _arg(item: Any, scope: _Scope) -> Any:
    if isinstance(item, Field):
        base = scope.dot if item.var == "" else scope.root if item.var == "$" else scope.vars.get(item.var, _MISSING)
        try:
            return _lookup(base, item.names, scope.missing_key_error) if item.names else base
        except TemplateError as exc:
            raise _at(item, exc) from exc
    if isinstance(item, tuple) and item[0] == "pipe":
        return _run_pipeline(item[1], scope)
    if isinstance(item, Ident):
        return _call(item, [], scope, None)
    return item


def _arity_error(name: str, fn: Callable[..., Any], given: int, skip_self: bool = False) -> str | None:
    """Go's "wrong number of args" words for calling `fn` with `given` arguments, or None when they fit."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return None
    want = code.co_argcount - (1 if skip_self else 0)
    if code.co_flags & 0x04:  # *args: Go's variadic functions
        return None if given >= want else f"wrong number of args for {name}: want at least {want} got {given}"
    return None if given == want else f"wrong number of args for {name}: want {want} got {given}"


def _call(ident: Ident, args: list[Any], scope: _Scope, command: Command | None) -> Any:
    name = ident.name
    fn = _index if name == "index" else FUNCTIONS.get(name)
    if fn is None:
        raise _ExecError(f'function "{name}" not defined', ident.pos, name)
    wrong = _arity_error(name, fn, len(args)) if name != "index" or args else \
        "wrong number of args for index: want at least 1 got 0"
    if wrong:
        raise _ExecError(wrong, ident.pos, name)
    try:
        return fn(*args)
    except (TemplateError, TypeError, ValueError, AttributeError, KeyError) as exc:
        where: Any = command if command is not None else ident
        raise _at(where, TemplateError(f"error calling {name}: {exc}")) from exc


def _run_pipeline(pipeline: list[Command], scope: _Scope) -> Any:
    value: Any = _MISSING
    for i, command in enumerate(pipeline):
        head, *rest = command
        args = [_arg(a, scope) for a in rest]
        if i > 0:
            args.append(value)
        if isinstance(head, Ident):
            value = _call(head, args, scope, command)
        else:
            value = _arg(head, scope)
            if callable(value):
                value = _call_method(head, value, args)
            elif args:
                raise _at(command, TemplateError(f"can't give argument to non-function {_field_name(head)}"))
    return value


def _field_name(item: Any) -> str:
    return (item.var + "." + ".".join(item.names)) if isinstance(item, Field) else str(item)


def _call_method(head: Any, method: Callable[..., Any], args: list[Any]) -> Any:
    name = _field_name(head).rpartition(".")[2]
    wrong = _arity_error(name, method, len(args), skip_self=hasattr(method, "__func__"))
    if wrong:
        raise _at(head, TemplateError(wrong))
    return method(*args)


def _execute(nodes: list[Any], scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Action):
            value = _run_pipeline(node.pipeline, scope)
            if node.declare:
                scope.vars[node.declare[0]] = value
            else:
                out.append(go_str(value))
        elif isinstance(node, Block):
            _execute_block(node, scope, out)


def _execute_block(block: Block, scope: _Scope, out: list[str]) -> None:
    value = _run_pipeline(block.pipeline, scope)
    if block.kind in ("if", "elif"):
        _execute(block.body if _truthy(value) else block.otherwise, scope, out)
    elif block.kind == "with":
        if _truthy(value):
            _execute(block.body, scope.inner(value, dict(scope.vars)), out)
        else:
            _execute(block.otherwise, scope, out)
    else:  # range
        if isinstance(value, Mapping):
            items = sorted(value.items())
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif value in (None, _MISSING):
            items = []
        else:
            raise _at(block.pipeline[0], TemplateError(f"range can't iterate over {go_str(value)}"))
        if not items:
            _execute(block.otherwise, scope, out)
        for key, item in items:
            variables = dict(scope.vars)
            if len(block.declare) == 2:
                variables[block.declare[0]], variables[block.declare[1]] = key, item
            elif len(block.declare) == 1:
                variables[block.declare[0]] = item
            _execute(block.body, scope.inner(item, variables), out)


class Template:
    """A parsed template.  `name` is what Go's errors call it (docker's version/info: "version", "");
    `missing_key_error` is Go's missingkey=error, as docker's inspect uses on raw JSON."""

    def __init__(self, source: str, name: str = "", missing_key_error: bool = False) -> None:
        self.source = source
        self.name = name
        self.missing_key_error = missing_key_error
        try:
            self.nodes = parse(source)
        except TemplateError as exc:
            raise TemplateError(f"{PARSE_ERROR}template: {name}:1: {exc}") from exc

    def render(self, data: Any) -> str:
        out: list[str] = []
        try:
            _execute(self.nodes, _Scope(data, data, {"$": data}, self.missing_key_error), out)
        except _ExecError as exc:
            line = self.source.count("\n", 0, exc.pos) + 1
            column = exc.pos - (self.source.rfind("\n", 0, exc.pos) + 1)
            raise TemplateError(f'template: {self.name}:{line}:{column}: executing "{self.name}" '
                                f"at <{exc.text}>: {exc}") from exc
        return "".join(out)


def render(source: str, data: Any) -> str:
    return Template(source).render(data)

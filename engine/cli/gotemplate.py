"""A subset of Go's text/template, for `--format` strings written for docker.

Covers what everyday scripts use: field chains (`{{.State.Status}}`), `.`/`$`,
pipelines (`{{.Names | json}}`), functions docker adds (`json`, `join`,
`index`, `upper`, `lower`, `title`, `split`, `len`, `printf`, `println`,
`pad`, `truncate`), `range` (with `$k, $v :=`), `if`/`else if`/`else`, `with`,
trim markers (`{{-`, `-}}`) and Go's value printing (`map[a:b]`, `[x y]`,
`<no value>`).  Errors name the position, like Go's "template: :1:3: ...".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

TYPE_CHECKING = False  # not typing's: the template engine is on the fast path (engine/cli/fast.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class TemplateError(Exception):
    """A template that cannot be parsed or executed."""


PARSE_ERROR = "template parsing error: "  # how docker's inspect/version word a template that does not parse


_MISSING = object()


# ---------------------------------------------------------------- lexing
_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*") |
        (?P<raw>`[^`]*`) |
        (?P<num>-?\d+(?:\.\d+)?) |
        (?P<field>(?:\$\w*)?(?:\.\w+)+|\.) |
        (?P<var>\$\w*) |
        (?P<assign>:=) |
        (?P<punct>[|(),]) |
        (?P<ident>[A-Za-z_]\w*)
    )""",
    re.X,
)


class Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class Action:
    __slots__ = ("declare", "pipeline")

    def __init__(self, pipeline: list[list[Any]], declare: list[str] | None = None) -> None:
        self.pipeline = pipeline
        self.declare = declare or []


class Block:
    __slots__ = ("body", "declare", "kind", "otherwise", "pipeline")

    def __init__(self, kind: str, pipeline: list[list[Any]], declare: list[str], body: list[Any]) -> None:
        self.kind = kind  # range | if | with
        self.pipeline = pipeline
        self.declare = declare
        self.body = body
        self.otherwise: list[Any] = []


class Field:
    __slots__ = ("names", "var")

    def __init__(self, var: str, names: tuple[str, ...]) -> None:
        self.var = var  # "" for the dot, "$" or "$name" for variables
        self.names = names


class Ident:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        if not source[pos:].strip():
            break
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"unexpected {source[pos:].strip()[:10]!r} in command")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _parse_pipeline(tokens: list[tuple[str, str]]) -> tuple[list[str], list[list[Any]]]:
    declare: list[str] = []
    if "assign" in (k for k, _ in tokens):
        idx = [k for k, _ in tokens].index("assign")
        declare = [v for k, v in tokens[:idx] if k == "var"]
        tokens = tokens[idx + 1:]
    commands: list[list[Any]] = [[]]
    depth_stack: list[list[list[Any]]] = []
    for kind, value in tokens:
        if kind == "punct" and value == "|":
            commands.append([])
        elif kind == "punct" and value == ",":
            continue
        elif kind == "punct" and value == "(":
            depth_stack.append(commands)
            commands = [[]]
        elif kind == "punct" and value == ")":
            if not depth_stack:
                raise TemplateError("unexpected right paren")
            inner = commands
            commands = depth_stack.pop()
            commands[-1].append(("pipe", inner))
        elif kind == "str":
            commands[-1].append(json.loads(value))
        elif kind == "raw":
            commands[-1].append(value[1:-1])
        elif kind == "num":
            commands[-1].append(float(value) if "." in value else int(value))
        elif kind == "field":
            var, _, rest = value.partition(".") if value.startswith("$") else ("", "", value[1:])
            commands[-1].append(Field(var, tuple(n for n in rest.split(".") if n)))
        elif kind == "var":
            commands[-1].append(Field(value, ()))
        elif kind == "ident":
            if value in ("true", "false"):
                commands[-1].append(value == "true")
            elif value == "nil":
                commands[-1].append(None)
            elif value not in FUNCTIONS and value != "index":
                raise TemplateError(f'function "{value}" not defined')  # Go checks names at parse time
            else:
                commands[-1].append(Ident(value))
    if depth_stack:
        raise TemplateError("unclosed left paren")
    if any(not c for c in commands):
        raise TemplateError("missing value for command")
    return declare, commands


def parse(source: str) -> list[Any]:
    root: list[Any] = []
    stack: list[tuple[Block | None, list[Any]]] = [(None, root)]
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[pos:match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if text:
            stack[-1][1].append(Text(text))
        trim_next = bool(match.group(3))
        pos = match.end()
        body = match.group(2).strip()
        if body.startswith("/*"):
            continue
        word, _, rest = body.partition(" ")
        if word in ("range", "if", "with"):
            declare, pipeline = _parse_pipeline(_tokens(rest))
            block = Block(word, pipeline, declare, [])
            stack[-1][1].append(block)
            stack.append((block, block.body))
        elif word == "else":
            current = stack[-1][0]
            if current is None:
                raise TemplateError("unexpected {{else}}")
            if rest.startswith("if "):
                # `else if` is an `if` nested in the else branch that shares the `end`.
                declare, pipeline = _parse_pipeline(_tokens(rest[3:]))
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
            declare, pipeline = _parse_pipeline(_tokens(body))
            stack[-1][1].append(Action(pipeline, declare))
    tail = source[pos:]
    if "{{" in tail:
        raise TemplateError("unclosed action")
    if trim_next:
        tail = tail.lstrip()
    if tail:
        stack[-1][1].append(Text(tail))
    if len(stack) != 1:
        raise TemplateError("unexpected EOF: missing {{end}}")
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


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


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
        text = json.dumps(go_str(value), ensure_ascii=False)
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

    out = _VERB.sub(one, fmt)
    extra = list(values)
    if extra:
        out += "%!(EXTRA " + ", ".join(f"{_go_type(v)}={go_str(v)}" for v in extra) + ")"
    return out


def _title(s: str) -> str:
    """strings.Title: the first letter of every word (words are split by anything but letters and digits)."""
    return re.sub(r"(?<!\w)\w", lambda m: m.group().upper(), s)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": lambda v: json.dumps(None if v is _MISSING else v, separators=(",", ":")),
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
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key, _MISSING)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            try:
                value = value[int(key)]
            except (IndexError, ValueError) as exc:
                raise TemplateError(f"error calling index: index out of range: {key}") from exc
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(value).__name__}")
    return value


# ---------------------------------------------------------------- execution
class _Scope:
    def __init__(self, dot: Any, root: Any, variables: dict[str, Any]) -> None:
        self.dot = dot
        self.root = root
        self.vars = variables


def _lookup(value: Any, names: tuple[str, ...]) -> Any:
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
        elif value is None:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
        else:
            value = getattr(value, name, _MISSING)
    return value


def _arg(item: Any, scope: _Scope) -> Any:
    if isinstance(item, Field):
        base = scope.dot if item.var == "" else scope.root if item.var == "$" else scope.vars.get(item.var, _MISSING)
        return _lookup(base, item.names) if item.names else base
    if isinstance(item, tuple) and item[0] == "pipe":
        return _run_pipeline(item[1], scope)
    if isinstance(item, Ident):
        return _call(item.name, [], scope)
    return item


def _call(name: str, args: list[Any], scope: _Scope) -> Any:
    if name == "index":
        return _index(*args)
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise TemplateError(f'function "{name}" not defined')
    try:
        return fn(*args)
    except TypeError as exc:
        raise TemplateError(f"wrong number of args for {name}") from exc


def _run_pipeline(pipeline: list[list[Any]], scope: _Scope) -> Any:
    value: Any = _MISSING
    for i, command in enumerate(pipeline):
        head, *rest = command
        args = [_arg(a, scope) for a in rest]
        if i > 0:
            args.append(value)
        if isinstance(head, Ident):
            value = _call(head.name, args, scope)
        else:
            value = _arg(head, scope)
            if callable(value):
                value = _call_method(head, value, args)
            elif args:
                raise TemplateError(f"can't give argument to non-function {_field_name(head)}")
    return value


def _field_name(item: Any) -> str:
    return (item.var + "." + ".".join(item.names)) if isinstance(item, Field) else str(item)


def _call_method(head: Any, method: Callable[..., Any], args: list[Any]) -> Any:
    code = getattr(getattr(method, "__func__", method), "__code__", None)
    want = code.co_argcount - 1 if code is not None else len(args)  # bound: `self` is not the template's
    if want != len(args):
        name = _field_name(head).rpartition(".")[2]
        raise TemplateError(f"wrong number of args for {name}: want {want} got {len(args)}")
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
            _execute(block.body, _Scope(value, scope.root, dict(scope.vars)), out)
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
            raise TemplateError(f"range can't iterate over {go_str(value)}")
        if not items:
            _execute(block.otherwise, scope, out)
        for key, item in items:
            variables = dict(scope.vars)
            if len(block.declare) == 2:
                variables[block.declare[0]], variables[block.declare[1]] = key, item
            elif len(block.declare) == 1:
                variables[block.declare[0]] = item
            _execute(block.body, _Scope(item, scope.root, variables), out)


class Template:
    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.nodes = parse(source)
        except TemplateError as exc:
            raise TemplateError(f"{PARSE_ERROR}template: :1: {exc}") from exc

    def render(self, data: Any) -> str:
        out: list[str] = []
        try:
            _execute(self.nodes, _Scope(data, data, {"$": data}), out)
        except TemplateError as exc:
            raise TemplateError(f"template: :1: executing \"\" at <{self.source[:40]}>: {exc}") from exc
        return "".join(out)


def render(source: str, data: Any) -> str:
    return Template(source).render(data)

"""The plain forms of berth-runtime's lifecycle verbs, read without argparse.

argparse (with gettext, locale and textwrap, and the ~60 regular expressions
its parsers compile) is a few ms of every call, and the callers of an OCI
runtime — shims, berthd, the bench, runc's integration tests — call the same
handful of forms over and over: ``create``/``run`` with --bundle, --pid-file,
--console-socket, ``start``, ``delete [-f]``, ``kill ID [SIG]``, ``state``,
behind --root/--log/--log-format/--debug.  ``parse`` reads exactly those and
returns what argparse would (the same attribute names and defaults, the same
handler).  Anything else — another verb or an alias, an abbreviated or
unknown option, -h, ``--``, a value starting with "-", a missing or extra
argument — returns None and cli.py runs the full parser, so every message and
exit status stays argparse's.  tests/runtime/test_cli_options.py compares the
two on the same argument lists.
"""

from __future__ import annotations

from .abcs import Mapping, Sequence
from .state import DEFAULT_ROOT

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

# Global options (before the verb): option -> (attribute, takes a value).
_GLOBAL: dict[str, tuple[str, bool]] = {
    "--root": ("root", True), "--log": ("log", True), "--log-format": ("log_format", True),
    "--debug": ("debug", False), "--systemd-cgroup": ("systemd_cgroup", False), "--rootless": ("rootless", True),
}
_GLOBAL_DEFAULTS: dict[str, object] = {"root": DEFAULT_ROOT, "log": None, "log_format": "text", "debug": False,
                    "systemd_cgroup": False, "rootless": "auto"}
_LOG_FORMATS = ("text", "json")

_CREATE_OPTIONS: dict[str, tuple[str, bool]] = {
    "-b": ("bundle", True), "--bundle": ("bundle", True), "--console-socket": ("console_socket", True),
    "--pid-file": ("pid_file", True), "--preserve-fds": ("preserve_fds", True),
    "--no-pivot": ("no_pivot", False), "--no-new-keyring": ("no_new_keyring", False),
}
_CREATE_DEFAULTS: dict[str, object] = {"bundle": ".", "console_socket": None, "pid_file": None, "preserve_fds": 0,
                    "no_pivot": False, "no_new_keyring": False}


class _Verb:
    """One verb as commands/<module>.py registers it with argparse."""

    def __init__(self, module: str, handler: str, options: dict[str, tuple[str, bool]],
                 defaults: Mapping[str, object], positionals: tuple[str, ...], optional_last: str | None = None,
                 many: bool = False) -> None:
        self.module, self.handler, self.options, self.defaults = module, handler, options, defaults
        self.positionals, self.optional_last, self.many = positionals, optional_last, many


_VERBS: dict[str, _Verb] = {
    "create": _Verb("create", "create_command", _CREATE_OPTIONS, _CREATE_DEFAULTS, ("container_id",)),
    "run": _Verb("create", "run_command",
                 {**_CREATE_OPTIONS, "-d": ("detach", False), "--detach": ("detach", False), "--keep": ("keep", False)},
                 {**_CREATE_DEFAULTS, "detach": False, "keep": False}, ("container_id",)),
    "start": _Verb("start", "start_command", {}, {}, ("container_id",)),
    "state": _Verb("state", "state_command", {}, {}, ("container_id",)),
    "delete": _Verb("delete", "delete_command", {"-f": ("force", False), "--force": ("force", False)},
                    {"force": False}, ("container_ids",), many=True),
    "kill": _Verb("kill", "kill_command", {"-a": ("all", False), "--all": ("all", False)},
                  {"all": False, "signal": "SIGTERM"}, ("container_id",), optional_last="signal"),
}


def _read_options(argv: Sequence[str], i: int, options: dict[str, tuple[str, bool]],
                  into: dict[str, object], positionals: list[str] | None) -> int | None:
    """Read options (and, if ``positionals`` is given, plain arguments) from argv[i:]; the index where reading
    stopped (at the verb when ``positionals`` is None), or None for anything the full parser must judge."""
    option_after_positional = False
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if not arg.startswith("-"):
            if positionals is None:
                return i
            if option_after_positional:  # argparse takes positionals in one run: `delete a -f b` is its error
                return None
            positionals.append(arg)
            i += 1
            continue
        option_after_positional = bool(positionals)
        if name not in options or (eq and not options[name][1]) or (eq and not name.startswith("--")):
            return None
        dest, takes_value = options[name]
        if takes_value and not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None
            inline = argv[i + 1]
            i += 1
        into[dest] = inline if takes_value else True
        i += 1
    return i if positionals is not None else None


def parse(argv: Sequence[str]) -> ParsedArgs | None:
    """argparse's namespace for a plain lifecycle call, or None (then run the full parser)."""
    values: dict[str, object] = dict(_GLOBAL_DEFAULTS)
    at = _read_options(argv, 0, _GLOBAL, values, None)
    if at is None or values["log_format"] not in _LOG_FORMATS:
        return None
    verb = _VERBS.get(argv[at])
    if verb is None:
        return None
    values.update(verb.defaults)
    positionals: list[str] = []
    if _read_options(argv, at + 1, verb.options, values, positionals) is None:
        return None
    if not _take_positionals(verb, positionals, values):
        return None
    if "preserve_fds" in values:
        fds = values["preserve_fds"]
        if isinstance(fds, str):
            if not fds.isdigit():
                return None
            values["preserve_fds"] = int(fds)
    values["command"] = argv[at]
    # __import__, not importlib.import_module: importlib (and the warnings it imports) is ~0.3 ms per call.
    module = __import__(f"{__package__}.commands.{verb.module}", fromlist=[verb.handler])
    values["handler"] = getattr(module, verb.handler)
    return ParsedArgs(values)


class ParsedArgs:
    """The attributes argparse's Namespace would have (``vars()`` gives them back), without importing types."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # for mypy: the attributes are the parsed options
        raise AttributeError(name)


def _take_positionals(verb: _Verb, given: list[str], values: dict[str, object]) -> bool:
    if verb.many:
        if not given:
            return False
        values[verb.positionals[0]] = given
        return True
    most = len(verb.positionals) + (verb.optional_last is not None)
    if not len(verb.positionals) <= len(given) <= most:
        return False
    for name, value in zip((*verb.positionals, verb.optional_last), given, strict=False):
        if name is not None:
            values[name] = value
    return True

"""What every command gets: the global options, the engine client, output streams.

Errors end here: an engine error is one line `Error response from daemon: ...`,
an unreachable engine says where it looked, a usage error names the flag; no
traceback unless --debug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from engine.helpformat import QuickHelpFormatter

if TYPE_CHECKING:
    from engine.client.sync import Client


class UsageError(Exception):
    """Bad command line: unknown command or flag (docker: exit 125), missing argument (docker: exit 1)."""

    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StatusError(Exception):
    """A command that failed with a message and a specific exit status (docker's cli.StatusError)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class GlobalOptions:
    """Options before the command name.  Not a dataclass: importing dataclasses costs ms at every start."""

    def __init__(self, host: str | None = None, debug: bool = False, help: bool = False,
                 show_version: bool = False, context: str | None = None) -> None:
        self.host = host
        self.context = context
        self.debug = debug
        self.help = help
        self.show_version = show_version


class ArgumentParser(argparse.ArgumentParser):
    """argparse speaking docker's errors: `unknown flag: --x` (exit 125), missing arguments (exit 1), one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # docker (cobra/pflag) never accepts a flag prefix
        kwargs.setdefault("formatter_class", QuickHelpFormatter)
        super().__init__(*args, **kwargs)

    @property
    def command(self) -> str:
        return self.prog.removeprefix("berth ")

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            raise UsageError(f"'berth {self.command}' requires at least 1 argument. "
                             f"See 'berth {self.command} --help'.", exit_code=1)
        raise UsageError(f"{message}. See 'berth {self.command} --help'.")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: Any = None) -> argparse.Namespace:
        opts, extras = self.parse_known_args(args, namespace)
        if extras:
            self._unknown(extras[0])
        assert isinstance(opts, argparse.Namespace)
        return opts

    def _unknown(self, arg: str) -> NoReturn:
        if not arg.startswith("-"):
            raise UsageError(f"'berth {self.command}' got an unexpected argument {arg!r}. "
                             f"See 'berth {self.command} --help'.", exit_code=1)
        import difflib

        flags = [s for action in self._actions for s in action.option_strings]
        close = difflib.get_close_matches(arg.partition("=")[0], flags, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"unknown flag: {arg}.{hint} See 'berth {self.command} --help'.")

    def takes_value(self, flag: str) -> bool:
        """Whether `flag` (as typed, without `=value`) consumes the next argument."""
        action = self._option_string_actions.get(flag)
        if action is None and flag.startswith("-") and not flag.startswith("--") and len(flag) > 2:
            # Bundled short flags (`-it`, `-dp 80`): only the last one can take a value.
            action = self._option_string_actions.get("-" + flag[-1])
        return action is not None and action.nargs != 0

    def go_bools(self, args: Sequence[str], flags: Sequence[str]) -> tuple[list[str], dict[str, bool]]:
        """Go (pflag) bool flags that also take a value (`--ipv4`, `--ipv4=false`), which argparse cannot
        read both ways: taken out of `args` (up to `--`) with their values (strconv.ParseBool's spellings)."""
        rest: list[str] = []
        found: dict[str, bool] = {}
        remaining = iter(args)
        for arg in remaining:
            name, eq, value = arg.partition("=")
            if arg == "--" or name not in flags:
                rest.append(arg)
                if arg == "--":
                    rest.extend(remaining)
                continue
            parsed = _GO_BOOLS.get(value) if eq else True
            if parsed is None:
                raise UsageError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                                 f'parsing "{value}": invalid syntax. See \'berth {self.command} --help\'.')
            found[name] = parsed
        return rest, found

    def split_positionals(self, args: Sequence[str]) -> tuple[list[str], list[str]]:
        """Flags up to the first positional, then the rest untouched: `run [OPTIONS] IMAGE [COMMAND] [ARG...]`."""
        args = list(args)
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                return args[:i], args[i + 1:]
            if not arg.startswith("-") or arg == "-":
                return args[:i], args[i:]
            i += 2 if "=" not in arg and self.takes_value(arg) else 1
        return args, []


_GO_BOOLS = {**dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
             **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)}


class CLIContext:
    def __init__(self, options: GlobalOptions, environ: Mapping[str, str],
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.options = options
        self.environ = environ
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from engine.client.hosts import parse_host, tls_from_env
            from engine.client.sync import Client

            if self.options.host:
                if self.options.context:
                    raise UsageError("conflicting options: either specify --host or --context, not both",
                                     exit_code=1)
                address = parse_host(self.options.host, tls_from_env(self.environ))
            else:
                # The engine of the selected context (engine/cli/context_store.py has the precedence).
                from engine.cli.context_store import ContextError, ContextStore, address_for

                store = ContextStore(self.environ)
                try:
                    address = address_for(store, store.selected(self.options.context))
                except ContextError as exc:
                    raise StatusError(str(exc), 1) from exc
            self._client = Client(address)
        return self._client

    def parser(self, command: str, description: str) -> ArgumentParser:
        return ArgumentParser(prog=f"berth {command}", description=description)

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")

    def run(self, command: Callable[[CLIContext, list[str]], int | None], args: list[str]) -> int:
        from engine.client.errors import ClientError

        try:
            return command(self, args) or 0
        except UsageError as exc:
            self.err.write(f"berth: {exc}\n")
            return exc.exit_code
        except StatusError as exc:
            if str(exc):
                self.err.write(f"{exc}\n")
            return exc.exit_code
        except ClientError as exc:
            if self.options.debug:
                raise
            self.err.write(f"{exc}\n")
            return 1
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            raise  # main() silences it once for every path (the interpreter's final flush included)
        except Exception as exc:  # a bug of ours: still one line, the traceback is behind --debug
            if self.options.debug:
                raise
            self.err.write(f"berth: unexpected error: {type(exc).__name__}: {exc} (-D shows the traceback)\n")
            return 1

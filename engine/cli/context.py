"""What every command gets: the global options, the engine client, output streams.

Errors end here: an engine error is one line `Error response from daemon: ...`,
an unreachable engine says where it looked, a usage error names the flag; no
traceback unless --debug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TextIO

if TYPE_CHECKING:
    from engine.client.sync import Client


class UsageError(Exception):
    """Bad command line: unknown command or flag, missing argument."""


@dataclass
class GlobalOptions:
    host: str | None = None
    debug: bool = False
    help: bool = False
    show_version: bool = False


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports errors as UsageError (docker's exit 125), not exit 2 + usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nSee 'berth {self.prog.removeprefix('berth ')} --help'.")


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
            from engine.client.hosts import default_address, parse_host, tls_from_env
            from engine.client.sync import Client

            host = self.options.host or self.environ.get("BERTH_HOST")
            address = parse_host(host, tls_from_env(self.environ)) if host else default_address(self.environ)
            self._client = Client(address)
        return self._client

    def parser(self, command: str, description: str) -> ArgumentParser:
        return ArgumentParser(prog=f"berth {command}", description=description)

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def run(self, command: Callable[[CLIContext, list[str]], int | None], args: list[str]) -> int:
        from engine.client.errors import ClientError

        try:
            return command(self, args) or 0
        except UsageError as exc:
            self.err.write(f"berth: {exc}\n")
            return 125
        except ClientError as exc:
            if self.options.debug:
                raise
            self.err.write(f"{exc}\n")
            return 1
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            return 0

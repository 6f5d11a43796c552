"""`berth machine ...`: the VM backend's commands.  There is no VM backend yet, and on Linux berthd runs
natively, so every subcommand says exactly that and fails: nothing here pretends to start a machine."""

from __future__ import annotations

from engine.cli.context import CLIContext, StatusError

SUBCOMMANDS = ("init", "start", "stop", "status", "ssh", "rm", "set", "logs")
NOT_AVAILABLE = ("berth machine: not available on this platform yet "
                 "(the VM backend is not built; on Linux berthd runs natively)")


def machine(ctx: CLIContext, args: list[str]) -> int:
    raise StatusError(NOT_AVAILABLE, 1)

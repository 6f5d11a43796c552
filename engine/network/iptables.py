"""The iptables CLI, run in a given netns: chains, hooks and tagged rules.

Berth talks to iptables through its command line (`iptables -w`, so concurrent
callers queue on the xtables lock instead of failing) rather than a library:
the CLI is the stable interface across the legacy and nf_tables backends
(Debian 12 ships 1.8.9 on nf_tables).  Only chains Berth creates are filled;
the built-in chains get one jump each, inserted at position 1 so an existing
policy or rule (a dockerd beside us sets FORWARD to DROP) cannot shadow ours.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess

from engine.network.errors import FirewallError
from engine.network.netns import entered

log = logging.getLogger(__name__)

Rule = list[str]
# What may appear in one argument of a batched rule: iptables-restore splits lines
# on whitespace and has its own quoting, so anything else is refused, not escaped.
_SAFE_ARG = re.compile(r"^[A-Za-z0-9_.:/,!+=@%-]+$")


class Iptables:
    def __init__(self, host_netns: str | os.PathLike[str] | None = None, binary: str = "iptables") -> None:
        path = shutil.which(binary)
        if path is None:
            raise FirewallError(f"{binary} not found: install the iptables package (apt-get install iptables)")
        self.binary = path
        self.restore_binary = shutil.which(f"{binary}-restore")
        self.host_netns = host_netns

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # The child inherits the calling thread's netns (entered() moved only this thread).
        with entered(self.host_netns):
            result = subprocess.run([self.binary, "-w", *args], capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise FirewallError(f"iptables {shlex.join(args)}: {result.stderr.strip()}")
        return result

    def apply(self, batch: dict[str, list[Rule]]) -> None:
        """Apply full rule commands (`["-A", chain, ...]`, `-I`, `-D`) per table in one atomic
        iptables-restore --noflush call: all of them or none, and two processes instead of one per rule."""
        batch = {table: commands for table, commands in batch.items() if commands}
        if not batch:
            return
        for commands in batch.values():
            for command in commands:
                bad = [arg for arg in command if not _SAFE_ARG.match(arg)]
                if bad:
                    raise FirewallError(f"refusing iptables arguments {bad!r}")
        if self.restore_binary is None:
            for table, commands in batch.items():
                for command in commands:
                    self.run("-t", table, *command)
            return
        text = "".join(
            f"*{table}\n" + "".join(" ".join(command) + "\n" for command in commands) + "COMMIT\n"
            for table, commands in batch.items()
        )
        with entered(self.host_netns):
            result = subprocess.run([self.restore_binary, "-w", "--noflush"], input=text, capture_output=True,
                                    text=True, timeout=60)
        if result.returncode != 0:
            raise FirewallError(f"iptables-restore: {result.stderr.strip()}\n{text}")

    def tagged(self, table: str, chains: set[str], comment: str) -> list[Rule]:
        """`-A <chain> ...` commands of every rule in `chains` carrying the comment (one listing of the table)."""
        found = []
        for line in self.dump(table):
            words = shlex.split(line)
            if len(words) > 2 and words[0] == "-A" and words[1] in chains and _comment_of(words[2:]) == comment:
                found.append(words)
        return found

    def chain_exists(self, table: str, chain: str) -> bool:
        return self.run("-t", table, "-S", chain, check=False).returncode == 0

    def ensure_chain(self, table: str, chain: str) -> None:
        if not self.chain_exists(table, chain):
            self.run("-t", table, "-N", chain)

    def rules(self, table: str, chain: str) -> list[Rule]:
        """The rules of `chain` as argument lists without the leading `-A <chain>`."""
        result = self.run("-t", table, "-S", chain)
        return [shlex.split(line)[2:] for line in result.stdout.splitlines() if line.startswith("-A ")]

    def append(self, table: str, chain: str, rule: Rule) -> None:
        self.run("-t", table, "-A", chain, *rule)

    def insert(self, table: str, chain: str, rule: Rule, position: int = 1) -> None:
        self.run("-t", table, "-I", chain, str(position), *rule)

    def delete(self, table: str, chain: str, rule: Rule) -> bool:
        return self.run("-t", table, "-D", chain, *rule, check=False).returncode == 0

    def hook(self, table: str, builtin: str, rule: Rule) -> None:
        """Put `rule` (a jump) at position 1 of `builtin`, exactly once (a restart must not stack copies)."""
        self.unhook(table, builtin, rule)
        self.insert(table, builtin, rule)

    def unhook(self, table: str, builtin: str, rule: Rule) -> None:
        while self.delete(table, builtin, rule):
            pass

    def remove_chain(self, table: str, chain: str) -> None:
        if self.chain_exists(table, chain):
            self.run("-t", table, "-F", chain)
            self.run("-t", table, "-X", chain)

    def dump(self, table: str) -> list[str]:
        """`iptables -S` of a whole table: policies and rules, without counters."""
        return self.run("-t", table, "-S").stdout.splitlines()


def _comment_of(rule: Rule) -> str | None:
    for i, word in enumerate(rule[:-1]):
        if word == "--comment":
            return rule[i + 1]
    return None

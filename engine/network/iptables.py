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
import shlex
import shutil
import subprocess

from engine.network.errors import FirewallError
from engine.network.netns import entered

log = logging.getLogger(__name__)

Rule = list[str]


class Iptables:
    def __init__(self, host_netns: str | os.PathLike[str] | None = None, binary: str = "iptables") -> None:
        path = shutil.which(binary)
        if path is None:
            raise FirewallError(f"{binary} not found: install the iptables package (apt-get install iptables)")
        self.binary = path
        self.host_netns = host_netns

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # The child inherits the calling thread's netns (entered() moved only this thread).
        with entered(self.host_netns):
            result = subprocess.run([self.binary, "-w", *args], capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise FirewallError(f"iptables {shlex.join(args)}: {result.stderr.strip()}")
        return result

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

    def delete_tagged(self, table: str, chain: str, comment: str) -> int:
        """Delete every rule of `chain` carrying `-m comment --comment <comment>`; returns how many."""
        removed = 0
        for rule in self.rules(table, chain):
            if _comment_of(rule) == comment and self.delete(table, chain, rule):
                removed += 1
        return removed

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

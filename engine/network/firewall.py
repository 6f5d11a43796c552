"""Berth's chains in a host netns: install them, fill them per network and endpoint, remove them whole.

Restore at daemon start: `install()` creates the chains or flushes what a
previous run left in them (stale rules of containers that died with the
daemon), hooks them exactly once, and the daemon then re-adds the rules of
every network and running container from its metadata (the one source of
truth: STYLE.md "The house").  `uninstall()` leaves the host's tables as they
were before `install()`.
"""

from __future__ import annotations

import logging

from engine.network.firewall_rules import (
    ChainNames,
    NetworkSpec,
    PortRuleSpec,
    TableRule,
    base_rules,
    endpoint_tag,
    hooks,
    network_rules,
    network_tag,
    port_rules,
)
from engine.network.iptables import Iptables

log = logging.getLogger(__name__)


class Firewall:
    def __init__(self, iptables: Iptables, names: ChainNames | None = None, userland_proxy: bool = True) -> None:
        self.iptables = iptables
        self.names = names or ChainNames()
        self.userland_proxy = userland_proxy

    def _chains(self) -> list[tuple[str, str]]:
        n = self.names
        # Referencing chains before the chains they jump to: removal goes in this order.
        return [("nat", n.dnat), ("nat", n.postrouting), ("filter", n.forward),
                ("filter", n.isolation1), ("filter", n.isolation2)]

    def install(self) -> None:
        for table, chain in self._chains():
            if self.iptables.chain_exists(table, chain):
                self.iptables.run("-t", table, "-F", chain)
            else:
                self.iptables.run("-t", table, "-N", chain)
        # Both proxy modes' OUTPUT hooks are removed: the mode may have changed since the last run.
        for mode in (True, False):
            for table, builtin, rule in hooks(self.names, mode):
                self.iptables.unhook(table, builtin, rule)
        self._apply(base_rules(self.names))
        for table, builtin, rule in hooks(self.names, self.userland_proxy):
            self.iptables.hook(table, builtin, rule)
        log.info("firewall: chains %s installed", ", ".join(c for _, c in self._chains()))

    def uninstall(self) -> None:
        for mode in (True, False):
            for table, builtin, rule in hooks(self.names, mode):
                self.iptables.unhook(table, builtin, rule)
        for table, chain in self._chains():
            if self.iptables.chain_exists(table, chain):
                self.iptables.run("-t", table, "-F", chain)
        for table, chain in self._chains():
            self.iptables.remove_chain(table, chain)
        log.info("firewall: chains removed")

    def _apply(self, rules: list[TableRule]) -> None:
        batch: dict[str, list[list[str]]] = {}
        for rule in rules:
            where = ["-I", rule.chain, "1"] if rule.first else ["-A", rule.chain]
            batch.setdefault(rule.table, []).append([*where, *rule.args])
        self.iptables.apply(batch)

    def add_network(self, net: NetworkSpec) -> None:
        self.remove_network(net.network_id)
        self._apply(network_rules(self.names, net))

    def remove_network(self, network_id: str) -> None:
        self._remove_tagged(network_tag(network_id))

    def add_ports(self, ports: list[PortRuleSpec]) -> None:
        for port in ports:
            self._apply(port_rules(self.names, port))

    def remove_endpoint(self, endpoint_id: str) -> None:
        self._remove_tagged(endpoint_tag(endpoint_id))

    def _remove_tagged(self, tag: str) -> None:
        batch: dict[str, list[list[str]]] = {}
        for table in ("nat", "filter"):
            ours = {chain for t, chain in self._chains() if t == table}
            batch[table] = [["-D", *rule[1:]] for rule in self.iptables.tagged(table, ours, tag)]
        self.iptables.apply(batch)
        removed = sum(len(commands) for commands in batch.values())
        if removed:
            log.info("firewall: removed %d rules tagged %s", removed, tag)

    def listing(self) -> dict[str, list[list[str]]]:
        """Every rule in Berth's chains, by chain (for `berth network inspect`-style diagnostics and tests)."""
        return {chain: self.iptables.rules(table, chain) for table, chain in self._chains()}


class NoFirewall(Firewall):
    """`--iptables=false`: Berth adds no rule at all; published ports work through the userland proxy only."""

    def __init__(self, names: ChainNames | None = None, userland_proxy: bool = True) -> None:
        self.names = names or ChainNames()
        self.userland_proxy = userland_proxy

    def install(self) -> None:
        log.info("firewall: iptables disabled, no rules installed")

    def uninstall(self) -> None:
        pass

    def add_network(self, net: NetworkSpec) -> None:
        pass

    def remove_network(self, network_id: str) -> None:
        pass

    def add_ports(self, ports: list[PortRuleSpec]) -> None:
        pass

    def remove_endpoint(self, endpoint_id: str) -> None:
        pass

    def listing(self) -> dict[str, list[list[str]]]:
        return {}

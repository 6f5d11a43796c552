"""Errors of the network layer; the API maps them to Docker's status codes in one place.

NotFound -> 404, Conflict -> 409, InvalidParameter -> 400, anything else -> 500.
"""

from __future__ import annotations


class NetworkError(Exception):
    """Base of engine.network errors."""


class NotFound(NetworkError):
    """A network, endpoint, address or namespace that does not exist."""


class Conflict(NetworkError):
    """Something is already taken: a subnet, an address, a host port, a name."""


class PoolExhausted(Conflict):
    """No subnet or address left to hand out (dockerd: 'could not find an available ... pool')."""


class PortConflict(Conflict):
    """A published host port is already bound (dockerd: 'port is already allocated')."""


class InvalidParameter(NetworkError):
    """A malformed request: a bad port spec, subnet or address."""


class FirewallError(NetworkError):
    """iptables is missing or refused a rule."""

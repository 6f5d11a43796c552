"""Routes `/v1.xx/...` and unversioned paths to handlers; checks the API version."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.api.errors import InvalidParameter, NotAllowed, NotFound
from engine.api.http import HTTPConnection, Request, Response

# The newest API Berth speaks, and the oldest it accepts (dockerd 28 keeps 1.24).
API_VERSION = "1.51"
MIN_API_VERSION = "1.24"

RouteHandler = Callable[[Request, HTTPConnection], Awaitable[Response | None]]

_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")
_PARAM = re.compile(r"\{(\w+)\}")


def version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: RouteHandler


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: RouteHandler) -> None:
        """`path` like `/containers/{id}/json`; `{name}` matches one segment.

        `{name:path}`-style greedy parameters are spelled `{name*}` (image
        names contain slashes: `/images/{name*}/json`).
        """
        regex = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", path)
        regex = _PARAM.sub(r"(?P<\1>[^/]+)", regex)
        self._routes.append(Route(method, re.compile(f"^{regex}$"), handler))

    def resolve(self, request: Request) -> RouteHandler:
        path = request.path
        match = _VERSIONED.match(path)
        if match:
            request.api_version = match.group(1)
            path = match.group(2)
            check_version(request.api_version)
        request.path = path
        allowed = False
        for route in self._routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.method != request.method and not (route.method == "GET" and request.method == "HEAD"):
                allowed = True
                continue
            request.params = found.groupdict()
            return route.handler
        if allowed:
            raise NotAllowed(f"method {request.method} not allowed for {path}")
        raise NotFound("page not found")


def check_version(version: str) -> None:
    wanted = version_tuple(version)
    if wanted > version_tuple(API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if wanted < version_tuple(MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, "
            "please upgrade your client to a newer version"
        )

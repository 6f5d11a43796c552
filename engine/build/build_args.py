"""Build arguments Docker defines without an ARG (Dockerfile reference, "Predefined ARGs" and
"Automatic platform ARGs in the global scope").

* The proxy variables may be passed with ``--build-arg`` without being
  declared; they reach RUN's environment but are kept out of the image
  history and are not substituted into other instructions.
* The platform variables live in the global scope: usable in FROM lines
  directly, and inside a stage after ``ARG TARGETARCH`` (no default needed).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.images.platforms import host_architecture

PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)


_KNOWN_OS = frozenset({"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "illumos", "solaris"})
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os[/arch[/variant]]`` or a bare ``arch``, as containerd's platforms.Parse reads ``--platform``."""
        parts = text.lower().split("/")
        if len(parts) > 3 or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
        if len(parts) == 1:
            # One word is an OS (on the host's architecture) or an architecture (on linux).
            if parts[0] in _KNOWN_OS:
                return cls(parts[0], host_architecture())
            return cls("linux", _ARCH_ALIASES.get(parts[0], parts[0]))
        variant = parts[2] if len(parts) == 3 else ""
        return cls(parts[0], _ARCH_ALIASES.get(parts[1], parts[1]), variant)

    @classmethod
    def host(cls) -> Platform:
        return cls("linux", host_architecture())

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def platform_args(build: Platform, target: Platform) -> dict[str, str]:
    """The automatic ``BUILD*``/``TARGET*`` args for a build on ``build`` producing ``target``."""
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
    }

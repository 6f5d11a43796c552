"""Image references, parsed and normalized the way Docker does it.

Follows distribution/reference (the grammar in its `regexp.go` and the
normalization in `normalize.go`), including its error wording, because the
Docker CLI and docker-py show those messages to users verbatim.

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]     (a first component with "." or ":",
                                       "localhost", or an uppercase letter)

`busybox` normalizes to `docker.io/library/busybox:latest`; the *familiar*
form (`busybox:latest`) is what `docker images` and RepoTags display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.images.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?:{_DOMAIN}/)?{_REMOTE_NAME}"

_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_ANCHORED_NAME_RE = re.compile(rf"^(?:({_DOMAIN})/)?({_REMOTE_NAME})$")
_ANCHORED_TAG_RE = re.compile(rf"^{_TAG}$")
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")

# go-digest: the algorithms it knows and the exact hex length of each.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


def validate_digest(digest: str) -> str:
    """Return `digest` if it is a well-formed `algorithm:hex` digest (go-digest rules)."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not algorithm or not encoded:
        raise InvalidReference("invalid checksum digest format")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise InvalidReference("unsupported digest algorithm")
    if len(encoded) != expected:
        raise InvalidReference("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidReference("invalid checksum digest format")
    return digest


@dataclass(frozen=True, order=True)
class Reference:
    """A parsed reference.  `domain` is empty only for unnormalized parses."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Repository name, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """Short repository name as Docker shows it, e.g. `busybox`, `user/app`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_REPO_PREFIX):
            remainder = self.path[len(OFFICIAL_REPO_PREFIX) :]
            # Only strip `library/` for single-component official names, like Docker.
            if "/" not in remainder:
                return remainder
        return self.path

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        """Familiar string form: `busybox:latest`, `localhost:5000/a/b@sha256:...`."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        text = f":{self.tag}" if self.tag is not None else ""
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        if not _ANCHORED_TAG_RE.match(tag):
            raise InvalidReference("invalid tag format")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, validate_digest(digest))

    def repository(self) -> Reference:
        """The bare repository (no tag, no digest)."""
        return Reference(self.domain, self.path)


def parse(text: str) -> Reference:
    """Parse without normalization (distribution/reference `Parse`)."""
    match = _REFERENCE_RE.match(text)
    if match is None:
        if text == "":
            raise InvalidReference("repository name must have at least one component")
        if _REFERENCE_RE.match(text.lower()) is not None:
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    name_match = _ANCHORED_NAME_RE.match(name)
    assert name_match is not None  # the full reference matched, so its name does
    domain, path = name_match.group(1) or "", name_match.group(2)
    if digest is not None:
        validate_digest(digest)
    return Reference(domain, path, tag, digest)


def _split_docker_domain(text: str) -> tuple[str, str]:
    """Split off the registry domain like `splitDockerDomain` in normalize.go."""
    first, slash, rest = text.partition("/")
    if not slash:
        # A single component is always a Docker Hub official image, even if it
        # looks like `localhost` or `host:5000` (that would be a tag).
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + text
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, text
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse_normalized_named(text: str) -> Reference:
    """Parse a user-typed name into its fully-qualified form (`ParseNormalizedNamed`)."""
    if _IDENTIFIER_RE.match(text):
        raise InvalidReference(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(f"{domain}/{remainder}")


def parse_docker_ref(text: str) -> Reference:
    """Normalize and default the tag to `latest` when neither tag nor digest is given."""
    ref = parse_normalized_named(text)
    if ref.tag is None and ref.digest is None:
        return Reference(ref.domain, ref.path, DEFAULT_TAG, None)
    return ref


def parse_any(text: str) -> Reference | str:
    """`ParseAnyReference`: a bare 64-hex id or an `algo:hex` digest comes back as a
    digest string; anything else as a normalized Reference."""
    if _IDENTIFIER_RE.match(text):
        return "sha256:" + text
    if ":" in text and "/" not in text and "@" not in text:
        try:
            return validate_digest(text)
        except InvalidReference:
            pass
    return parse_normalized_named(text)


def is_full_id(text: str) -> bool:
    """True for a bare 64-hex image id (what Docker refuses as a repository name)."""
    return _IDENTIFIER_RE.match(text) is not None

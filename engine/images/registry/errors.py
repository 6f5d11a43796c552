"""Errors of the registry client, worded like Docker's where Docker's wording is known.

They extend engine.images.errors, so the API's one mapping covers them: NotFound →
404, DigestMismatch → 500; Unauthorized and RegistryUnavailable are new (dockerd
answers 401/403 and 500 for them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.images import errors as image_errors


class RegistryError(image_errors.ImageError):
    """Base class for everything the registry client raises.

    `codes` holds the distribution-spec error codes of the response that caused it
    (e.g. {"MANIFEST_UNKNOWN"}), so callers can reword without parsing messages.
    """

    def __init__(self, message: str, codes: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.message = message
        self.codes = codes


class NotFound(RegistryError, image_errors.NotFound):
    """A manifest, blob, repository or platform the registry does not have."""


class PlatformNotFound(NotFound):
    """An index has no manifest for the requested platform."""


class Unauthorized(RegistryError):
    """The registry refused our (missing or wrong) credentials."""


class PullAccessDenied(Unauthorized):
    """Docker's wording for unauthorized/denied/name-unknown while pulling."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached (connection refused, TLS failure, repeated 5xx)."""


class DigestMismatch(RegistryError, image_errors.DigestMismatch):
    """Content whose sha256 is not the digest it was asked for or announced with."""


class ManifestError(RegistryError):
    """A manifest we cannot use: unknown media type, schema 1, malformed JSON."""


class CredentialsError(RegistryError):
    """Credentials could not be read (bad config.json, missing credential helper)."""


class UploadError(RegistryError):
    """The registry answered an upload step with something the spec does not allow."""


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of the distribution-spec error body (spec: "Error Codes")."""

    code: str
    message: str

    def __str__(self) -> str:
        # Docker prints errcode errors as "<code description>: <message>", the code
        # description being the code in lower case with spaces ("manifest unknown").
        description = self.code.lower().replace("_", " ")
        return f"{description}: {self.message}" if self.message else description


def parse_error_body(body: bytes) -> list[ErrorDetail]:
    """Parse `{"errors": [{"code": ..., "message": ...}]}`; an unparsable body gives []."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict):
        return []
    entries = document.get("errors")
    if not isinstance(entries, list):
        return []
    details = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            message = entry.get("message")
            details.append(ErrorDetail(entry["code"], message if isinstance(message, str) else ""))
    return details


_STATUS_TEXT = {
    400: "bad request",
    401: "unauthorized: authentication required",
    403: "denied: requested access to the resource is denied",
    404: "not found",
    405: "unsupported",
    429: "toomanyrequests: too many requests",
}


def describe_error(status: int, body: bytes) -> str:
    """The text Docker shows for an error response: the error codes, else a status phrase."""
    details = parse_error_body(body)
    if details:
        return "; ".join(str(detail) for detail in details)
    return _STATUS_TEXT.get(status, f"unexpected status {status}")


def error_codes(body: bytes) -> frozenset[str]:
    return frozenset(detail.code for detail in parse_error_body(body))

"""Safe random access to the members of an image archive (a tar), without extracting it.

`docker load` extracts the archive into a temporary directory and then opens
paths in it through a chroot; we never touch the filesystem instead: every
member is indexed by its normalized name, and names given by the archive's
own JSON are resolved in that index.

Refused (InvalidArchive): absolute names, `..` components, duplicate names,
device nodes and fifos, and links that leave the archive or dangle.  Links
that stay inside are followed, because real writers use them (`docker save`
before v25 and skopeo's docker-archive link a shared `<id>/layer.tar` to the
one stored copy).
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from typing import IO, Any, BinaryIO

from engine.images.errors import InvalidArchive

MAX_JSON_BYTES = 32 << 20
_MAX_LINK_HOPS = 16


def normalize_member_name(name: str) -> str:
    """The canonical form of a name inside the archive; refuses anything that could escape."""
    if not name or "\x00" in name:
        raise InvalidArchive(f"invalid name in archive: {name!r}")
    if name.startswith("/"):
        raise InvalidArchive(f"absolute path in archive: {name!r}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise InvalidArchive(f"path traversal in archive: {name!r}")
    if not parts:
        raise InvalidArchive(f"invalid name in archive: {name!r}")
    return "/".join(parts)


class ArchiveReader:
    """An index of a tar's members; `open`/`read` resolve names safely."""

    def __init__(self, fileobj: BinaryIO) -> None:
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:")  # noqa: SIM115 - closed by close()
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError) as err:
            raise InvalidArchive(f"not a readable tar archive: {err}") from err
        self._files: dict[str, tarfile.TarInfo] = {}
        self._links: dict[str, str] = {}
        for member in members:
            name = normalize_member_name(member.name)
            if name in self._files or name in self._links:
                raise InvalidArchive(f"duplicate entry in archive: {name}")
            if member.isreg():
                self._files[name] = member
            elif member.issym():
                self._links[name] = self._link_target(name, member.linkname, relative=True)
            elif member.islnk():
                self._links[name] = self._link_target(name, member.linkname, relative=False)
            elif member.isdir():
                continue
            else:
                raise InvalidArchive(f"unexpected special file in archive: {name}")

    @staticmethod
    def _link_target(name: str, target: str, relative: bool) -> str:
        if target.startswith("/"):
            raise InvalidArchive(f"link {name} points outside the archive: {target}")
        joined = posixpath.join(posixpath.dirname(name), target) if relative else target
        normalized = posixpath.normpath(joined)
        if normalized.startswith("../") or normalized == "..":
            raise InvalidArchive(f"link {name} points outside the archive: {target}")
        return normalize_member_name(normalized)

    def close(self) -> None:
        self._tar.close()

    def names(self) -> list[str]:
        return sorted([*self._files, *self._links])

    def resolve(self, name: str) -> tarfile.TarInfo:
        current = normalize_member_name(name)
        for _ in range(_MAX_LINK_HOPS):
            if current in self._files:
                return self._files[current]
            if current not in self._links:
                raise InvalidArchive(f"archive has no file {name!r}")
            current = self._links[current]
        raise InvalidArchive(f"too many link hops resolving {name!r}")

    def has(self, name: str) -> bool:
        try:
            self.resolve(name)
        except InvalidArchive:
            return False
        return True

    def size(self, name: str) -> int:
        return self.resolve(name).size

    def open(self, name: str) -> IO[bytes]:
        member = self.resolve(name)
        handle = self._tar.extractfile(member)
        if handle is None:  # only for non-regular members, which resolve() never returns
            raise InvalidArchive(f"cannot read {name!r}")
        return handle

    def read(self, name: str, limit: int = MAX_JSON_BYTES) -> bytes:
        if self.size(name) > limit:
            raise InvalidArchive(f"{name} is larger than {limit} bytes")
        try:
            with self.open(name) as handle:
                data = handle.read()
        except (tarfile.TarError, OSError) as err:
            raise InvalidArchive(f"cannot read {name}: {err}") from err
        if len(data) != self.size(name):
            raise InvalidArchive(f"{name} is truncated")
        return data

    def read_json(self, name: str) -> Any:
        return parse_json(self.read(name), name)


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidArchive(f"{what} is not valid JSON: {err}") from err

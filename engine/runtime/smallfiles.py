"""Whole small files (procfs, cgroupfs, state JSON) read in three system calls.

``open(path).read()`` costs nine here (fstat twice, the TTY ioctl, two lseeks,
read, read, close) plus an io.TextIOWrapper: ~25 us a file, and a container's
create-start-delete reads about thirty of them (the runtime bench).  These
files are kilobytes: read to EOF with os.read, decode once.
"""

from __future__ import annotations

import os

_CHUNK = 65536


def read_bytes(path: str) -> bytes:
    """The file's bytes; OSError (FileNotFoundError...) as open() raises it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _CHUNK)
        if not data:
            return data
        # procfs and cgroupfs hand out one page per read: read until EOF, not until a short read.
        chunks = [data]
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str, errors: str = "strict") -> str:
    return read_bytes(path).decode("utf-8", errors)

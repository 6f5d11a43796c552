"""Network namespaces: persistent (bind-mounted) ones for containers, and entering one briefly.

A container's netns is made before the OCI runtime starts the container, so the
runtime joins it by path (runtime-spec config-linux.md#namespaces: a `path` on
the network namespace) and the network layer can wire it up first: the same
order dockerd/libnetwork uses with its sandbox files under /var/run/docker/netns.

Namespaces are per thread.  `entered(path)` moves only the calling thread into
a netns and back, which is enough for everything here: a netlink socket, a
listening socket or a child process (iptables) keeps the netns of the thread
that made it.  Unlike setns(CLONE_NEWNS), setns(CLONE_NEWNET) works in a
multi-threaded process (MACHINE-NOTES "Networking").
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from engine.network.errors import Conflict, NetworkError, NotFound
from engine.runtime import syscalls

log = logging.getLogger(__name__)

# Where iproute2 keeps named namespaces; `ip netns exec <name>` finds files here.
NAMED_NETNS_DIR = Path("/run/netns")


def named_path(name: str) -> Path:
    return NAMED_NETNS_DIR / name


def pid_path(pid: int) -> Path:
    """The netns of a running process (valid while it lives)."""
    return Path(f"/proc/{pid}/ns/net")


@contextlib.contextmanager
def entered(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Run the block with the calling thread inside the netns at `path` (None: stay where we are)."""
    if path is None:
        yield
        return
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise NotFound(f"network namespace {path} does not exist") from exc
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(target, syscalls.CLONE_NEWNET)
        try:
            yield
        finally:
            # If this fails the thread would keep working in the wrong netns: never swallow it.
            syscalls.setns(home, syscalls.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(home)


def socket_in(path: str | os.PathLike[str] | None, family: int, type_: int) -> socket.socket:
    """A socket that belongs to the netns at `path` for its whole life."""
    with entered(path):
        return socket.socket(family, type_)


def create(path: str | os.PathLike[str]) -> Path:
    """Make a new, empty network namespace kept alive by a bind mount on `path`.

    The work happens on a short-lived thread: unshare(CLONE_NEWNET) changes only
    that thread, so the caller's namespace is never touched, even on error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    except FileExistsError as exc:
        raise Conflict(f"network namespace file {target} already exists") from exc
    os.close(fd)
    failure: list[BaseException] = []

    def make() -> None:
        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            syscalls.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", str(target), None, syscalls.MS_BIND)
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    worker = threading.Thread(target=make, name="berth-netns-create")
    worker.start()
    worker.join()
    if failure:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise NetworkError(f"cannot create network namespace {target}: {failure[0]}") from failure[0]
    log.info("created network namespace %s", target)
    return target


def remove(path: str | os.PathLike[str]) -> None:
    """Unmount and delete a namespace made by `create` (idempotent).

    The kernel frees the namespace (and the container end of every veth in it)
    once the last process and mount holding it are gone: asynchronously."""
    target = Path(path)
    try:
        syscalls.umount2(str(target), syscalls.MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise NetworkError(f"cannot unmount network namespace {target}: {exc}") from exc
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    log.info("removed network namespace %s", target)

"""The per-container state store: one directory per container under --root.

Layout (like runc's /run/runc/<id>/):
  <root>/<id>/state.json   what later verbs need (pid, bundle, cgroup path...)
  <root>/<id>/config.json  the spec the container was created from
  <root>/<id>/exec.fifo    present between create and start (runc's exec.fifo)
A verb that changes the container holds flock(2) on <root>/<id> itself (no lock file to create and delete).
Writes are atomic (write a temp file, rename) so a crashed verb never leaves
half a state.json behind.  No fsync, like runc's saveState: the state
describes processes that do not outlive the machine (the root is under /run:
berthd's exec-root, runc's /run/runc), and an fsync costs several ms per
write where /run is on a disk.
"""

from __future__ import annotations

import fcntl
import os

from . import fastjson
from .abcs import Callable
from .errors import ContainerExists, ContainerNotFound
from .lazylog import getLogger
from .record import record, record_field, record_fields
from .smallfiles import read_text
from .spec import Spec, check_container_id

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)

DEFAULT_ROOT = "/run/berth-runtime"
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
FIFO_FILE = "exec.fifo"


@record
class ContainerRecord:
    id: str
    bundle: str
    rootfs: str
    pid: int = 0
    pid_start_time: int | None = None
    created: str = ""
    annotations: dict[str, str] = record_field(default_factory=dict)
    cgroup_path: str | None = None
    namespace_paths: dict[str, str] = record_field(default_factory=dict)
    owner: str = "root"
    oci_version: str = "1.2.0"

    def to_json(self) -> dict[str, Any]:
        # Copies, like dataclasses.asdict: the caller may change the result.
        return {name: _copied(getattr(self, name)) for name in record_fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerRecord:
        names = set(record_fields(cls))
        return cls(**{k: v for k, v in data.items() if k in names})


def _copied(value: Any) -> Any:
    """The fields are str, int, None or flat dicts of str: a shallow copy of a dict is a deep one."""
    return dict(value) if isinstance(value, dict) else value


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class StateStore:
    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root

    def seccomp_cache_dir(self) -> str:
        """Compiled seccomp programs, by content hash (seccomp.compile_seccomp): each `run` of the same
        profile skips the ~25 ms compile.  No state.json inside: `list` never shows it."""
        return os.path.join(self.root, "@seccomp-cache")  # "@" is never in a container id

    def container_dir(self, container_id: str) -> str:
        check_container_id(container_id)
        return os.path.join(self.root, container_id)

    def fifo_path(self, container_id: str) -> str:
        return os.path.join(self.container_dir(container_id), FIFO_FILE)

    def exists(self, container_id: str) -> bool:
        return os.path.exists(os.path.join(self.container_dir(container_id), STATE_FILE))

    def reserve(self, container_id: str) -> str:
        """Create the container's directory; fail if the id is taken."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        path = self.container_dir(container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        return path

    def save(self, record: ContainerRecord) -> None:
        path = os.path.join(self.container_dir(record.id), STATE_FILE)
        atomic_write(path, fastjson.dumps(record.to_json()).encode())

    def save_config(self, container_id: str, spec: Spec) -> None:
        path = os.path.join(self.container_dir(container_id), CONFIG_FILE)
        atomic_write(path, fastjson.dumps(spec).encode())

    def load(self, container_id: str) -> ContainerRecord:
        path = os.path.join(self.container_dir(container_id), STATE_FILE)
        try:
            return ContainerRecord.from_json(fastjson.loads(read_text(path)))
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None

    def load_config(self, container_id: str) -> Spec:
        path = os.path.join(self.container_dir(container_id), CONFIG_FILE)
        try:
            spec: Spec = fastjson.loads(read_text(path))
            return spec
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None

    def list_ids(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if os.path.exists(os.path.join(self.root, n, STATE_FILE))]

    def remove(self, container_id: str) -> None:
        # A few files and no subdirectories: os.walk instead of shutil (~1.5 ms to import on every `run`).
        top = self.container_dir(container_id)
        for directory, subdirs, files in os.walk(top, topdown=False):
            for name in files:
                _remove_quietly(os.unlink, os.path.join(directory, name))
            for name in subdirs:
                path = os.path.join(directory, name)
                _remove_quietly(os.unlink if os.path.islink(path) else os.rmdir, path)
        _remove_quietly(os.rmdir, top)

    def locked(self, container_id: str) -> ContainerLock:
        """Serialise verbs that change one container (two deletes, start vs kill): ``with store.locked(id):``."""
        directory = self.container_dir(container_id)
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return ContainerLock(fd)


class ContainerLock:
    """The flock StateStore.locked took, released when the with-block ends.

    A class, not contextlib.contextmanager: contextlib (and the collections and
    functools it imports) is ~2 ms of every berth-runtime call.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        os.close(self._fd)  # closing the last fd releases the flock


def _remove_quietly(remove: Callable[[str], None], path: str) -> None:
    try:
        remove(path)
    except OSError:  # gone already, or in use: state removal is best effort, as runc's
        pass

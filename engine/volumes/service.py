"""Named volumes with the `local` driver: what the daemon's volume endpoints and containers call.

    volumes = VolumeService(db, data_root)
    volumes.restore()                                   # daemon start: reconcile disk and database
    doc  = volumes.create("data", labels={...}, driver_opts={...})   # Volume JSON
    name = volumes.create(anonymous=True)["Name"]       # `-v /ctr`, image VOLUME
    volumes.acquire(name, container_id)                 # container create: in use from now on
    host = volumes.mount_for(name)                      # container start: mounts tmpfs/device volumes
    host = volumes.subpath(name, "sub/dir")             # VolumeOptions.Subpath, after mount_for
    volumes.populate_from(name, rootfs, "/ctr/path")    # first use, unless nocopy: copy the image's content
    volumes.release(name, container_id)                 # unmounts after the last user
    volumes.release_container(container_id)             # container rm: every reference it held
    volumes.inspect(name) / list_volumes(filters) / remove(name, force) / prune(filters) / usage(name)

Layout on disk is Docker's: <data-root>/volumes/<name>/_data is the Mountpoint.
State lives in the metadata database (engine/volumes/store.py); whether a
volume's backing filesystem is mounted is read from /proc/self/mountinfo, so
nothing about mounts needs remembering across a restart.

One lock serialises changes: a volume's row and its directory must appear and
disappear together, and mount/unmount must not race acquire/release.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.snapshots.errors import MountError
from engine.snapshots.mounts import is_mounted, unmount_all_under
from engine.store import MetadataDB
from engine.volumes import copy_up, filters, local_options, names
from engine.volumes.errors import Conflict, InUse, InvalidParameter, MountFailed, NotFound
from engine.volumes.mount_spec import is_local_subpath
from engine.volumes.records import LOCAL_DRIVER, UsageData, VolumeRecord
from engine.volumes.store import VolumeStore
from engine.volumes.subpath import resolve_subpath
from engine.volumes.usage import directory_size

log = logging.getLogger(__name__)

VOLUMES_DIR = "volumes"
DATA_DIR = "_data"


@dataclass
class RestoreReport:
    unmounted: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class VolumeService:
    def __init__(self, db: MetadataDB, data_root: Path) -> None:
        self.store = VolumeStore(db)
        self.root = Path(data_root) / VOLUMES_DIR
        # 0701: others may traverse to a _data they were given, never list the volume names.
        self.root.mkdir(mode=0o701, parents=True, exist_ok=True)
        self._lock = threading.RLock()

    # -- paths ------------------------------------------------------------

    def mountpoint(self, name: str) -> Path:
        return self.root / name / DATA_DIR

    # -- create / inspect / list -----------------------------------------

    def create(
        self,
        name: str = "",
        driver: str = "",
        driver_opts: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        """`POST /volumes/create`.  An existing name returns that volume, as Docker does.

        ``anonymous`` is for volumes the daemon makes for containers (`-v /ctr`,
        image VOLUMEs): they get a generated name and the label that `prune`
        looks for.  A nameless `docker volume create` gets a generated name but
        is not anonymous.
        """
        driver = driver or LOCAL_DRIVER
        if driver != LOCAL_DRIVER:
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        if name:
            names.validate_name(name)
        else:
            name = names.generate_name()
        opts = dict(driver_opts or {})
        local_options.validate(opts)
        all_labels = dict(labels or {})
        if anonymous:
            all_labels.setdefault(names.ANONYMOUS_LABEL, "")
        created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            record, created = self.store.insert(VolumeRecord(name, created_at, LOCAL_DRIVER, all_labels, opts))
            if record.driver != LOCAL_DRIVER:
                raise Conflict(f"create {name}: volume name must be unique")
            self.mountpoint(name).mkdir(mode=0o755, parents=True, exist_ok=True)
        if created:
            log.info("volume %s created (options %s)", name, opts or "none")
        return self._doc(record)

    def get(self, name: str) -> VolumeRecord:
        return self.store.get(name)

    def inspect(self, name: str, with_usage: bool = False) -> dict[str, Any]:
        """`GET /volumes/{name}`; ``with_usage`` adds UsageData, as `GET /system/df` wants."""
        return self._doc(self.store.get(name), with_usage)

    def list_volumes(self, list_filters: filters.Filters | None = None, with_usage: bool = False) -> dict[str, Any]:
        """`GET /volumes`: the VolumeListResponse."""
        wanted = list_filters or {}
        filters.check_list(wanted)
        refs = self.store.all_refs()
        volumes = [self._doc(r, with_usage, refs.get(r.name, []))
                   for r in self.store.all() if filters.match_list(wanted, r, bool(refs.get(r.name)))]
        return {"Volumes": volumes, "Warnings": []}

    def users(self, name: str) -> list[str]:
        """Ids of the containers holding a reference, sorted."""
        self.store.get(name)
        return self.store.refs(name)

    def usage(self, name: str) -> int:
        """Bytes used by the volume's content (hard links counted once), for `system df`."""
        self.store.get(name)
        return directory_size(self.mountpoint(name))

    def _doc(self, record: VolumeRecord, with_usage: bool = False, refs: list[str] | None = None) -> dict[str, Any]:
        usage: UsageData | None = None
        if with_usage:
            count = len(refs if refs is not None else self.store.refs(record.name))
            usage = {"Size": directory_size(self.mountpoint(record.name)), "RefCount": count}
        return record.to_api(str(self.mountpoint(record.name)), usage)

    # -- references and mounts -------------------------------------------

    def acquire(self, name: str, container_id: str) -> None:
        """Record that ``container_id`` uses the volume (idempotent); persisted, so removal stays refused."""
        with self._lock:
            self.store.add_ref(name, container_id)
        log.debug("volume %s referenced by %s", name, container_id)

    def release(self, name: str, container_id: str) -> None:
        """Drop the reference; the last one out unmounts a tmpfs/device-backed volume."""
        with self._lock:
            record = self.store.get(name)
            remaining = self.store.drop_ref(name, container_id)
            if remaining == 0:
                local_options.unmount_if_mounted(self.mountpoint(record.name))
        log.debug("volume %s released by %s (%d users left)", name, container_id, remaining)

    def mount_for(self, name: str) -> Path:
        """The host directory to bind into a container; mounts the backing filesystem on first use.

        Only a referenced volume may be mounted: the reference is what later
        tells `release` when to unmount.
        """
        with self._lock:
            record = self.store.get(name)
            if not self.store.refs(name):
                raise Conflict(f"mount {name}: volume is not referenced by any container; acquire it first")
            path = self.mountpoint(name)
            opts = local_options.LocalOptions.from_options(record.options)
            if opts.needs_mount and not is_mounted(path):
                path.mkdir(mode=0o755, parents=True, exist_ok=True)
                local_options.mount(opts, path)
            return path

    def subpath(self, name: str, subpath: str) -> Path:
        """Host path of ``subpath`` inside the volume (VolumeOptions.Subpath); call after `mount_for`.

        The container code should bind it right away: the volume's content
        may change between this call and the mount.
        """
        if not is_local_subpath(subpath):
            raise InvalidParameter(f"subpath must be a relative path within the volume: {subpath}")
        self.store.get(name)
        return resolve_subpath(self.mountpoint(name), subpath)

    def populate_from(self, name: str, image_rootfs_dir: Path, path_in_image: str) -> bool:
        """Copy the image's content at ``path_in_image`` into the volume, once, and only while it is empty.

        Call it after `mount_for` (so a tmpfs volume receives the copy), when
        the mount spec did not say `nocopy`.  Returns True if content was copied.
        """
        with self._lock:
            record = self.store.get(name)
            if record.populated:
                return False
            path = self.mount_for(name)
            if not copy_up.is_empty(path):
                # Docker never merges image content into data a user already has.
                self.store.mark_populated(name)
                return False
            try:
                copied = copy_up.copy_up(Path(image_rootfs_dir), path_in_image, path)
            except BaseException:
                # Leave it empty, as it was, so the next start can copy again instead of keeping half a copy.
                copy_up.empty_directory(path)
                raise
            self.store.mark_populated(name)
        if copied:
            log.info("volume %s populated from the image's %s", name, path_in_image)
        return copied

    def release_container(self, container_id: str) -> list[str]:
        """Drop every reference ``container_id`` holds (container removal); returns the volumes it used."""
        with self._lock:
            names_used = [n for n, users in self.store.all_refs().items() if container_id in users]
            for name in names_used:
                self.release(name, container_id)
        return names_used

    def restore(self) -> RestoreReport:
        """At daemon start, make the disk agree with the database after a crash.

        Unmounts backing filesystems no reference needs, recreates a missing
        _data directory, and deletes volume directories that have no row (a
        removal that died between the database and the disk).
        """
        report = RestoreReport()
        with self._lock:
            refs = self.store.all_refs()
            known = set()
            for record in self.store.all():
                known.add(record.name)
                path = self.mountpoint(record.name)
                if not refs.get(record.name) and is_mounted(path):
                    local_options.unmount_if_mounted(path)
                    report.unmounted.append(record.name)
                if not path.is_dir():
                    path.mkdir(mode=0o755, parents=True, exist_ok=True)
                    report.recreated.append(record.name)
            for entry in sorted(self.root.iterdir()):
                if entry.name not in known and entry.is_dir() and not entry.is_symlink():
                    self._remove_dir(entry.name)
                    report.removed.append(entry.name)
        for what, volume_names in (("unmounted", report.unmounted), ("recreated", report.recreated),
                                   ("removed leftover", report.removed)):
            if volume_names:
                log.warning("volume restore %s: %s", what, ", ".join(volume_names))
        return report

    # -- remove / prune ---------------------------------------------------

    def remove(self, name: str, force: bool = False) -> None:
        """`DELETE /volumes/{name}`.  ``force`` only forgives a missing volume; one in use is always refused."""
        with self._lock:
            try:
                refs = self.store.delete_if_unused(name)
            except NotFound:
                if force:
                    return
                raise
            if refs:
                raise InUse(f"remove {name}: volume is in use - [{', '.join(refs)}]", refs)
            self._remove_dir(name)
        log.info("volume %s removed", name)

    def prune(self, prune_filters: filters.Filters | None = None) -> dict[str, Any]:
        """`POST /volumes/prune`: unused volumes; anonymous ones only unless `all=true` (Docker 23+)."""
        wanted = prune_filters or {}
        include_named = filters.prune_all(wanted)
        deleted: list[str] = []
        reclaimed = 0
        with self._lock:
            refs = self.store.all_refs()
            for record in self.store.all():
                if refs.get(record.name) or not (include_named or record.anonymous):
                    continue
                if not filters.match_prune(wanted, record):
                    continue
                size = directory_size(self.mountpoint(record.name))
                try:
                    self.remove(record.name)
                except (InUse, NotFound) as exc:
                    log.info("prune skips volume %s: %s", record.name, exc)
                    continue
                deleted.append(record.name)
                reclaimed += size
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def _remove_dir(self, name: str) -> None:
        volume_dir = self.root / name
        try:
            unmount_all_under(volume_dir)
        except MountError as exc:
            raise MountFailed(f"remove {name}: {exc}") from exc
        if is_mounted(self.mountpoint(name)):
            # rmtree would descend into a bind-backed volume's host directory.
            raise MountFailed(f"remove {name}: {self.mountpoint(name)} is still mounted")
        try:
            shutil.rmtree(volume_dir)
        except FileNotFoundError:
            log.warning("volume %s had no directory at %s", name, volume_dir)

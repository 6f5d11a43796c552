"""The local image store: blobs in the content store, everything else in the metadata DB.

Image id = config digest, as in Docker.  Lookups accept what `docker` accepts:
a full or familiar reference (`busybox`, `docker.io/library/busybox:latest`),
`name@digest` (repo digest or a manifest the image came with), a full id with
or without `sha256:`, or a unique id prefix of any length.

Writers (archive load, import, the registry client) first put blobs in the
content store under a `lease`, then record images with `add_images` in one
transaction: an image is either fully visible or not at all.  Blobs written
for a failed attempt stay protected only while the lease lives and are
collected by `gc` afterwards (containerd's leases, in miniature).
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from engine.images import image_records as records
from engine.images import reference as refs
from engine.images.content_store import BlobWriter, ContentStore
from engine.images.digests import is_sha256, short_id
from engine.images.errors import Conflict, InvalidParameter, InvalidReference, NotFound
from engine.images.image_json import history_json, inspect_json, now_rfc3339, summary_json
from engine.images.image_records import ImageRecord, NewImage
from engine.images.image_schema import AREA, MIGRATIONS
from engine.snapshots.unpack import chain_ids
from engine.store.database import MetadataDB

log = logging.getLogger(__name__)

_HEX = set("0123456789abcdef")


class ImageUsers(Protocol):
    """Who uses an image (the containers area implements this later)."""

    def containers_using(self, image_id: str) -> Sequence[tuple[str, bool]]:
        """(container id, running) for each container created from the image."""
        ...


class _NoUsers:
    def containers_using(self, image_id: str) -> Sequence[tuple[str, bool]]:
        return ()


class DeleteConflict(Conflict):
    """moby's imageDeleteConflict; `hard` ones cannot be forced."""

    def __init__(self, image_id: str, message: str, hard: bool, used: bool = False) -> None:
        self.hard = hard
        self.used = used  # the conflict is a container using the image
        force = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id(image_id)} ({force}) - {message}")


class Lease:
    """Blobs a writer has put in the content store but not yet recorded."""

    def __init__(self, store: ImageStore) -> None:
        self._store = store
        self.digests: set[str] = set()

    def protect(self, digest: str) -> None:
        """Call before writing a blob of known digest, so gc cannot take it."""
        with self._store._gc_lock:
            if digest not in self.digests:
                self.digests.add(digest)
                self._store._leased[digest] += 1

    def commit(self, writer: BlobWriter) -> str:
        """Commit a writer and protect its blob with no window for gc in between."""
        with self._store._gc_lock:
            digest = writer.commit()
            if digest not in self.digests:
                self.digests.add(digest)
                self._store._leased[digest] += 1
        return digest

    def release(self) -> None:
        with self._store._gc_lock:
            for digest in self.digests:
                self._store._leased[digest] -= 1
                if self._store._leased[digest] <= 0:
                    del self._store._leased[digest]
            self.digests.clear()


class ImageStore:
    def __init__(
        self, data_root: Path, db: MetadataDB | None = None, users: ImageUsers | None = None
    ) -> None:
        self.data_root = Path(data_root)
        self.content = ContentStore(self.data_root / "content")
        self._owns_db = db is None
        self.db = db if db is not None else MetadataDB.in_data_root(self.data_root)
        self.db.ensure_schema(AREA, MIGRATIONS)
        self.users: ImageUsers = users or _NoUsers()
        self._gc_lock = threading.Lock()
        self._leased: Counter[str] = Counter()
        self._configs: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        if self._owns_db:
            self.db.close()

    # -- writing --------------------------------------------------------------

    @contextmanager
    def lease(self) -> Iterator[Lease]:
        lease = Lease(self)
        try:
            yield lease
        finally:
            lease.release()

    def add_images(self, images: Sequence[NewImage]) -> builtins.list[ImageRecord]:
        """Record images whose blobs are all in the content store, in ONE transaction."""
        prepared = []
        for image in images:
            config = self._check_blobs(image)
            prepared.append((image, config.get("created")))
        now = now_rfc3339()
        with self.db.transaction() as conn:
            for image, created in prepared:
                records.insert_image(conn, image, created, now)
        for image in images:
            log.info(
                "recorded image %s (%d layers, tags: %s)",
                image.config_digest,
                len(image.layers),
                ", ".join(ref.familiar() for ref in image.tags) or "none",
            )
        return [self.get(image.config_digest) for image in images]

    def add_image(self, image: NewImage) -> ImageRecord:
        return self.add_images([image])[0]

    def _check_blobs(self, image: NewImage) -> dict[str, Any]:
        needed = [image.config_digest] + [layer.blob_digest for layer in image.layers]
        needed += [manifest.digest for manifest in image.manifests]
        for digest in needed:
            if not self.content.has(digest):
                raise NotFound(f"blob {digest} of image {image.config_digest} is not in the content store")
        config = self.config(image.config_digest)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids")
        if diff_ids != [layer.diff_id for layer in image.layers]:
            raise InvalidParameter(f"image {image.config_digest}: config rootfs.diff_ids do not match its layers")
        for ref in image.tags:
            if ref.tag is None or ref.digest is not None or not ref.domain:
                raise InvalidReference(f"not a normalized name:tag reference: {ref}")
        return config

    def tag(self, source: str, target: str) -> refs.Reference:
        """`docker tag SOURCE TARGET`; returns the normalized target."""
        image_id = self.resolve(source)
        new_ref = refs.parse_normalized_named(target)
        if new_ref.digest is not None:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        if new_ref.tag is None:
            new_ref = new_ref.with_tag(refs.DEFAULT_TAG)
        with self.db.transaction() as conn:
            records.set_tag(conn, new_ref, image_id, now_rfc3339())
        log.info("tagged %s as %s", image_id, new_ref)
        return new_ref

    # -- reading --------------------------------------------------------------

    def config(self, image_id: str) -> dict[str, Any]:
        """The image's config JSON (immutable, so cached)."""
        cached = self._configs.get(image_id)
        if cached is None:
            parsed = json.loads(self.content.read(image_id))
            if not isinstance(parsed, dict):
                raise InvalidParameter(f"config {image_id} is not a JSON object")
            cached = self._configs[image_id] = parsed
        return cached

    def resolve(self, ref_or_id: str) -> str:
        """The image id that `ref_or_id` names (see the module docstring)."""
        if not ref_or_id:
            raise NotFound("No such image: ")
        parsed = refs.parse_any(ref_or_id)
        conn = self.db.connection()
        if isinstance(parsed, str):
            if records.load_image(conn, parsed) is not None:
                return parsed
            raise NotFound(f"No such image: {ref_or_id}")
        found: str | None
        if parsed.digest is not None:
            by_digest = refs.Reference(parsed.domain, parsed.path, None, parsed.digest)
            found = records.image_by_repo_digest(conn, by_digest) or records.image_by_manifest(
                conn, parsed.name, parsed.digest
            )
        else:
            found = records.image_by_tag(conn, parsed.with_tag(parsed.tag or refs.DEFAULT_TAG))
        if found is not None:
            return found
        found = self._search_id_prefix(ref_or_id)
        if found is not None:
            return found
        raise NotFound(f"No such image: {ref_or_id}")

    def _search_id_prefix(self, text: str) -> str | None:
        prefix = text.removeprefix("sha256:")
        if not prefix or not set(prefix) <= _HEX:
            return None
        matches = records.image_ids_with_prefix(self.db.connection(), prefix)
        if len(matches) > 1:
            raise NotFound(f"No such image: {text} (ambiguous id prefix)")
        return matches[0] if matches else None

    def get(self, ref_or_id: str) -> ImageRecord:
        image_id = self.resolve(ref_or_id)
        with self.db.snapshot() as conn:
            record = records.load_image(conn, image_id)
        if record is None:
            raise NotFound(f"No such image: {ref_or_id}")
        return record

    def list(self) -> builtins.list[ImageRecord]:
        with self.db.snapshot() as conn:
            loaded = [records.load_image(conn, image_id) for image_id in records.image_ids(conn)]
        return [record for record in loaded if record is not None]

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        record = self.get(ref_or_id)
        return inspect_json(record, self.config(record.id))

    def summaries(self) -> builtins.list[dict[str, Any]]:
        return [summary_json(record, self.config(record.id)) for record in self.list()]

    def history(self, ref_or_id: str) -> builtins.list[dict[str, Any]]:
        record = self.get(ref_or_id)
        chain = [(record, self.config(record.id))]
        parent = record.parent
        while parent:
            try:
                parent_record = self.get(parent)
            except NotFound:
                break
            chain.append((parent_record, self.config(parent_record.id)))
            parent = parent_record.parent
        return history_json(chain)

    # -- removing -------------------------------------------------------------

    def remove(self, ref_or_id: str, force: bool = False, prune: bool = True) -> builtins.list[dict[str, str]]:
        """`docker rmi`, with moby's semantics (daemon/images/image_delete.go).

        Returns ImageDeleteResponseItem dicts: {"Untagged": ref} / {"Deleted": id}.
        """
        image_id = self.resolve(ref_or_id)
        record = self.get(image_id)
        report: builtins.list[dict[str, str]] = []
        names = list(record.tags) + list(record.repo_digests)
        if not _is_id_prefix(image_id, ref_or_id):
            named = refs.parse_normalized_named(ref_or_id)
            if named.tag is None and named.digest is None:
                named = named.with_tag(refs.DEFAULT_TAG)
            users = self.users.containers_using(image_id)
            if not force and _is_single_repository(names) and users:
                raise Conflict(
                    f'conflict: unable to remove repository reference "{ref_or_id}" (must force) - '
                    f"container {short_id(users[0][0])} is using its referenced image {short_id(image_id)}"
                )
            removed = self._untag(named, image_id)
            report.append({"Untagged": removed.familiar()})
            remaining = self.get(image_id)
            names = list(remaining.tags) + list(remaining.repo_digests)
            # Removing the last tag of a repository also drops its digest references.
            if removed.digest is None and not any(
                ref.name == removed.name for ref in remaining.tags
            ):
                for ref in remaining.repo_digests:
                    if ref.name == removed.name:
                        self._untag(ref, image_id)
                        report.append({"Untagged": ref.familiar()})
                        names.remove(ref)
            if names:
                return report
            self._delete(image_id, force, prune, report, quiet=True)
            return report
        elif _is_single_repository(names):
            self._check_delete_conflicts(image_id, hard_only=force, referenced_ok=True)
            for ref in names:
                self._untag(ref, image_id)
                report.append({"Untagged": ref.familiar()})
        self._delete(image_id, force, prune, report, quiet=False)
        return report

    def prune(self, dangling_only: bool = True) -> dict[str, Any]:
        """`POST /images/prune`: remove dangling images (no tag, no child), or with
        `dangling_only=False` every image no container uses.  Images a container
        uses are kept either way.  Returns the ImagePruneResponse shape."""
        before = self._content_bytes()
        deleted: builtins.list[dict[str, str]] = []
        for record in self.list():
            if self.users.containers_using(record.id):
                continue
            if dangling_only and (record.tags or record.repo_digests):
                continue
            if records.children_of(self.db.connection(), record.id):
                continue
            report: builtins.list[dict[str, str]] = []
            try:
                if not dangling_only:
                    for ref in [*record.tags, *record.repo_digests]:
                        self._untag(ref, record.id)
                        report.append({"Untagged": ref.familiar()})
                self._delete(record.id, False, False, report, quiet=True)
            except NotFound:
                continue  # removed meanwhile, or as the parent of one pruned before
            deleted.extend(report)
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": max(0, before - self._content_bytes())}

    def _content_bytes(self) -> int:
        total = 0
        for digest in self.content.walk():
            try:
                total += self.content.size(digest)
            except NotFound:
                continue  # deleted by a concurrent gc
        return total

    def _untag(self, ref: refs.Reference, image_id: str) -> refs.Reference:
        with self.db.transaction() as conn:
            if not records.remove_reference(conn, ref):
                raise NotFound(f"No such image: {ref.familiar()}")
        log.info("untagged %s from %s", ref, image_id)
        return ref

    def _check_delete_conflicts(self, image_id: str, hard_only: bool, referenced_ok: bool = False) -> None:
        conn = self.db.connection()
        if records.children_of(conn, image_id):
            raise DeleteConflict(image_id, "image has dependent child images", hard=True)
        for container_id, running in self.users.containers_using(image_id):
            if running:
                raise DeleteConflict(
                    image_id, f"image is being used by running container {short_id(container_id)}", True, True
                )
            if not hard_only:
                raise DeleteConflict(
                    image_id, f"image is being used by stopped container {short_id(container_id)}", False, True
                )
        if not hard_only and not referenced_ok:
            record = records.load_image(conn, image_id)
            if record is not None and (record.tags or record.repo_digests):
                raise DeleteConflict(image_id, "image is referenced in multiple repositories", hard=False)

    def _delete(
        self, image_id: str, force: bool, prune: bool, report: builtins.list[dict[str, str]], quiet: bool
    ) -> None:
        try:
            self._check_delete_conflicts(image_id, hard_only=force)
        except DeleteConflict as conflict:
            # moby: after an untag (or when pruning parents) stay quiet unless the
            # image is left dangling by something other than a container.
            if quiet and (not self._is_dangling(image_id) or conflict.used):
                return
            raise
        record = self.get(image_id)
        with self.db.transaction() as conn:
            for ref in list(record.tags) + list(record.repo_digests):
                records.remove_reference(conn, ref)
            records.delete_image(conn, image_id)
            still_used = records.used_chain_ids(conn)
        for ref in list(record.tags) + list(record.repo_digests):
            report.append({"Untagged": ref.familiar()})
        report.append({"Deleted": image_id})
        for chain_id in chain_ids(record.diff_ids):
            if chain_id not in still_used:
                report.append({"Deleted": chain_id})
        candidates = {image_id} | {layer.blob_digest for layer in record.layers}
        candidates |= {manifest.digest for manifest in record.manifests}
        self.discard_unreferenced(candidates)
        self._configs.pop(image_id, None)
        log.info("deleted image %s", image_id)
        if prune and record.parent:
            self._delete(record.parent, False, True, report, quiet=True)

    def _is_dangling(self, image_id: str) -> bool:
        conn = self.db.connection()
        record = records.load_image(conn, image_id)
        has_names = record is not None and bool(record.tags or record.repo_digests)
        return not has_names and not records.children_of(conn, image_id)

    # -- garbage collection ---------------------------------------------------

    def referenced_blobs(self) -> set[str]:
        with self.db.snapshot() as conn:
            return records.referenced_blobs(conn)

    def discard_unreferenced(self, candidates: set[str]) -> builtins.list[str]:
        """Delete those of `candidates` that no image references and no lease protects
        (what a failed load or a removed image leaves behind)."""
        with self._gc_lock:
            keep = self.referenced_blobs() | set(self._leased)
            removed = [d for d in sorted(candidates - keep) if is_sha256(d) and self.content.delete(d)]
        return removed

    def recover(self) -> builtins.list[str]:
        """At daemon start, before any request: drop what a killed process left behind.

        A pull or load killed between committing blobs and recording its image
        leaves blobs no image references (removed here) and partial ingests (kept
        when resumable).  The image records need no repair: an image is recorded in
        one transaction after all its blobs are committed, so it is whole or absent.
        """
        stale = self.content.clean_ingests()
        removed = self.gc()
        if stale or removed:
            log.info("recovered image store: %d orphan blobs, %d stale ingests removed", len(removed), len(stale))
        return removed

    def gc(self) -> builtins.list[str]:
        """Remove every blob no image references and no live lease protects."""
        with self._gc_lock:
            keep = self.referenced_blobs() | set(self._leased)
            return self.content.gc(keep)


def _is_id_prefix(image_id: str, text: str) -> bool:
    return image_id.startswith(text) or image_id.startswith("sha256:" + text)


def _is_single_repository(names: Sequence[refs.Reference]) -> bool:
    """moby's isSingleReference: at most one tag, and all names in one repository."""
    if sum(1 for ref in names if ref.tag is not None) > 1:
        return False
    return len({ref.name for ref in names}) <= 1

"""What the metadata database holds about an image, and the SQL that reads and writes it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.images.reference import Reference, parse
from engine.snapshots.unpack import chain_ids


@dataclass(frozen=True)
class LayerRecord:
    """One layer: its uncompressed identity (diff_id) and the blob that stores it."""

    diff_id: str
    blob_digest: str
    media_type: str
    blob_size: int
    # Sum of the sizes of the files in the layer, what Docker reports as a layer's size.
    unpacked_size: int


@dataclass(frozen=True)
class ManifestRecord:
    """A manifest or index blob that belongs to an image (the target is the one
    a registry or archive pointed at)."""

    digest: str
    media_type: str
    size: int
    is_target: bool = False


@dataclass(frozen=True)
class NewImage:
    """Everything needed to record an image whose blobs are already in the content store."""

    config_digest: str
    layers: Sequence[LayerRecord]
    tags: Sequence[Reference] = ()
    repo_digests: Sequence[Reference] = ()
    manifests: Sequence[ManifestRecord] = ()
    parent: str = ""


@dataclass(frozen=True)
class ImageRecord:
    id: str
    created: str | None
    size: int
    parent: str
    added_at: str
    last_tag_time: str | None
    layers: tuple[LayerRecord, ...] = ()
    tags: tuple[Reference, ...] = ()
    repo_digests: tuple[Reference, ...] = ()
    manifests: tuple[ManifestRecord, ...] = field(default=())

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def target(self) -> ManifestRecord | None:
        return next((m for m in self.manifests if m.is_target), None)


def insert_image(
    conn: sqlite3.Connection, image: NewImage, created: str | None, now: str
) -> None:
    """Record an image (or merge into the existing record of the same id)."""
    size = sum(layer.unpacked_size for layer in image.layers)
    inserted = conn.execute(
        "INSERT INTO images(id, created, size, parent, added_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO NOTHING",
        (image.config_digest, created, size, image.parent, now),
    ).rowcount
    if inserted:
        for position, (layer, chain_id) in enumerate(
            zip(image.layers, chain_ids([layer.diff_id for layer in image.layers]), strict=True)
        ):
            conn.execute(
                "INSERT INTO image_layers(image_id, position, diff_id, chain_id, blob_digest, "
                "media_type, blob_size, unpacked_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    image.config_digest,
                    position,
                    layer.diff_id,
                    chain_id,
                    layer.blob_digest,
                    layer.media_type,
                    layer.blob_size,
                    layer.unpacked_size,
                ),
            )
    for manifest in image.manifests:
        conn.execute(
            "INSERT INTO image_manifests(image_id, digest, media_type, size, is_target) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(image_id, digest) "
            "DO UPDATE SET is_target = max(is_target, excluded.is_target)",
            (image.config_digest, manifest.digest, manifest.media_type, manifest.size, int(manifest.is_target)),
        )
    for ref in image.tags:
        set_tag(conn, ref, image.config_digest, now)
    for ref in image.repo_digests:
        conn.execute(
            "INSERT INTO image_digests(reference, image_id) VALUES (?, ?) "
            "ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id",
            (str(ref), image.config_digest),
        )


def set_tag(conn: sqlite3.Connection, ref: Reference, image_id: str, now: str) -> None:
    # A tag moves: the image it pointed at before keeps its other names or dangles.
    conn.execute(
        "INSERT INTO image_tags(reference, image_id, tagged_at) VALUES (?, ?, ?) "
        "ON CONFLICT(reference) DO UPDATE SET image_id = excluded.image_id, tagged_at = excluded.tagged_at",
        (str(ref), image_id, now),
    )
    conn.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (now, image_id))


def remove_reference(conn: sqlite3.Connection, ref: Reference) -> bool:
    table = "image_digests" if ref.digest is not None and ref.tag is None else "image_tags"
    return conn.execute(f"DELETE FROM {table} WHERE reference = ?", (str(ref),)).rowcount > 0


def delete_image(conn: sqlite3.Connection, image_id: str) -> None:
    conn.execute("DELETE FROM images WHERE id = ?", (image_id,))


def image_ids(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id FROM images ORDER BY added_at, id")]


def image_ids_with_prefix(conn: sqlite3.Connection, hex_prefix: str) -> list[str]:
    # GLOB, not LIKE: '_' and '%' are not wildcards there, and the prefix is hex anyway.
    return [
        row[0]
        for row in conn.execute("SELECT id FROM images WHERE id GLOB ? LIMIT 2", (f"sha256:{hex_prefix}*",))
    ]


def image_by_tag(conn: sqlite3.Connection, ref: Reference) -> str | None:
    row = conn.execute("SELECT image_id FROM image_tags WHERE reference = ?", (str(ref),)).fetchone()
    return str(row[0]) if row else None


def image_by_repo_digest(conn: sqlite3.Connection, ref: Reference) -> str | None:
    row = conn.execute("SELECT image_id FROM image_digests WHERE reference = ?", (str(ref),)).fetchone()
    return str(row[0]) if row else None


def image_by_manifest(conn: sqlite3.Connection, repository: str, digest: str) -> str | None:
    """`name@digest` also finds an image that came with that manifest but has a
    tag in the same repository (containerd's resolution)."""
    row = conn.execute(
        "SELECT m.image_id FROM image_manifests m JOIN image_tags t ON t.image_id = m.image_id "
        "WHERE m.digest = ? AND substr(t.reference, 1, ?) = ? LIMIT 1",
        (digest, len(repository) + 1, repository + ":"),
    ).fetchone()
    return str(row[0]) if row else None


def children_of(conn: sqlite3.Connection, image_id: str) -> list[str]:
    return [row[0] for row in conn.execute("SELECT id FROM images WHERE parent = ?", (image_id,))]


def load_image(conn: sqlite3.Connection, image_id: str) -> ImageRecord | None:
    row = conn.execute(
        "SELECT id, created, size, parent, added_at, last_tag_time FROM images WHERE id = ?", (image_id,)
    ).fetchone()
    if row is None:
        return None
    layers = tuple(
        LayerRecord(*layer)
        for layer in conn.execute(
            "SELECT diff_id, blob_digest, media_type, blob_size, unpacked_size FROM image_layers "
            "WHERE image_id = ? ORDER BY position",
            (image_id,),
        )
    )
    tags = tuple(
        sorted(parse(r[0]) for r in conn.execute("SELECT reference FROM image_tags WHERE image_id = ?", (image_id,)))
    )
    digests = tuple(
        sorted(
            parse(r[0]) for r in conn.execute("SELECT reference FROM image_digests WHERE image_id = ?", (image_id,))
        )
    )
    manifests = tuple(
        ManifestRecord(m[0], m[1], m[2], bool(m[3]))
        for m in conn.execute(
            "SELECT digest, media_type, size, is_target FROM image_manifests WHERE image_id = ? ORDER BY digest",
            (image_id,),
        )
    )
    return ImageRecord(
        id=row[0],
        created=row[1],
        size=row[2],
        parent=row[3],
        added_at=row[4],
        last_tag_time=row[5],
        layers=layers,
        tags=tags,
        repo_digests=digests,
        manifests=manifests,
    )


def referenced_blobs(conn: sqlite3.Connection) -> set[str]:
    """Every blob digest some image still needs: configs, layers, manifests."""
    blobs: set[str] = set()
    for query in (
        "SELECT id FROM images",
        "SELECT blob_digest FROM image_layers",
        "SELECT digest FROM image_manifests",
    ):
        blobs.update(row[0] for row in conn.execute(query))
    return blobs


def used_chain_ids(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT DISTINCT chain_id FROM image_layers")}

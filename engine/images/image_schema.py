"""The images area's tables in the metadata database (see engine/store/schema.py).

images          one row per image; id = config digest (Docker's image id)
image_layers    the layer chain: diff_id, chain_id and the blob that holds it
image_tags      name:tag → image (familiar form is derived, the full form is stored)
image_digests   name@digest → image (RepoDigests)
image_manifests manifests / indexes an image came with (digest → media type)

Every foreign key cascades from images, so deleting an image row removes all
of its rows in the same transaction.
"""

from __future__ import annotations

from engine.store.schema import Migration

AREA = "images"

MIGRATIONS = [
    Migration(
        1,
        (
            """CREATE TABLE images (
                id            TEXT PRIMARY KEY,
                created       TEXT,
                size          INTEGER NOT NULL,
                parent        TEXT NOT NULL DEFAULT '',
                added_at      TEXT NOT NULL,
                last_tag_time TEXT
            )""",
            """CREATE TABLE image_layers (
                image_id      TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
                position      INTEGER NOT NULL,
                diff_id       TEXT NOT NULL,
                chain_id      TEXT NOT NULL,
                blob_digest   TEXT NOT NULL,
                media_type    TEXT NOT NULL,
                blob_size     INTEGER NOT NULL,
                unpacked_size INTEGER NOT NULL,
                PRIMARY KEY (image_id, position)
            )""",
            "CREATE INDEX image_layers_by_chain ON image_layers(chain_id)",
            """CREATE TABLE image_tags (
                reference  TEXT PRIMARY KEY,
                image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
                tagged_at  TEXT NOT NULL
            )""",
            "CREATE INDEX image_tags_by_image ON image_tags(image_id)",
            """CREATE TABLE image_digests (
                reference  TEXT PRIMARY KEY,
                image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
            )""",
            "CREATE INDEX image_digests_by_image ON image_digests(image_id)",
            """CREATE TABLE image_manifests (
                image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
                digest     TEXT NOT NULL,
                media_type TEXT NOT NULL,
                size       INTEGER NOT NULL,
                is_target  INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (image_id, digest)
            )""",
        ),
    ),
]

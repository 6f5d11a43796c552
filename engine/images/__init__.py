"""Images: content store, references, image metadata, archives, registry client.

Where things are (one job per module):

    reference.py       parse/normalize `busybox` → docker.io/library/busybox:latest
    digests.py         sha256 digest helpers
    content_store.py   blobs/sha256/<hex>, verified atomic resumable ingest, gc
    image_schema.py    the images area's tables in the metadata DB (engine/store)
    image_records.py   dataclasses + SQL for images, layers, tags, repo digests, manifests
    image_store.py     ImageStore: add (one transaction), lookup, tag, rmi, prune, gc, leases
    image_json.py      ImageInspect / ImageSummary / history JSON shapes
    layer_blobs.py     layer compression detection, diff_id and size of a layer
    media_types.py     OCI / Docker media types and annotations
    platforms.py       host platform, index entry matching
    archive_reader.py  safe member access in an archive tar (no extraction)
    archive_load.py    `docker load` (docker-save and OCI layout)
    archive_write.py   the docker-save/OCI archive writer (deterministic)
    archive_save.py    `docker save` (what goes in the archive)
    rootfs_import.py   `docker import`
    config_changes.py  `--change` instructions for import/commit
    rootfs_prepare.py  image → snapshots → container rootfs (engine/snapshots)
    pull_record.py     a PulledImage (registry/) → an image record; LeasedSink
    registry/          the registry client (pull/push, auth)
"""

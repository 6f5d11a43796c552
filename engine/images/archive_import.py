"""`docker import`: a filesystem tarball (plain, gzip, zstd, bzip2 or xz) → a one-layer image.

As dockerd's daemon/images/image_import.go: the archive is stored as one
uncompressed layer (blob digest = diff_id, as Docker keeps local layers), the
config has no parent, the `--change` instructions applied to an empty runtime
config, and one history entry whose comment is the message (default
"Imported from <source>").
"""

from __future__ import annotations

import lzma
from pathlib import Path

import zstandard

from engine.images import media_types
from engine.images.commit import History, write_image
from engine.images.config_changes import apply_changes
from engine.images.errors import InvalidArchive
from engine.images.image_records import ImageRecord, LayerRecord
from engine.images.image_store import ImageStore
from engine.images.layer_blobs import describe_layer, open_uncompressed

_CHUNK = 1 << 20


def import_archive(store: ImageStore, archive: Path, changes: list[str], message: str,
                   source: str = "-") -> ImageRecord:
    """Record the image made of `archive`'s files; an archive that is not a (compressed) tar is refused."""
    runtime = apply_changes({}, [c for c in changes if c.strip()])  # bad instructions fail before any write
    with store.lease() as lease:
        try:
            with open(archive, "rb") as raw, open_uncompressed(raw) as plain, store.content.writer() as writer:
                while chunk := plain.read(_CHUNK):
                    writer.write(chunk)
                digest = lease.commit(writer)
        except (OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError) as exc:  # a broken compression
            raise InvalidArchive(f"the archive does not decompress: {exc}") from exc
        with store.content.open(digest) as blob:
            content = describe_layer(blob)  # InvalidArchive when it is no tar
        layer = LayerRecord(content.diff_id, digest, media_types.OCI_LAYER, store.content.size(digest),
                            content.unpacked_size)
        return write_image(store, None, runtime, History(created_by="", comment=message or f"Imported from {source}"),
                           layer, lease)

"""A process killed in the middle of recording an image leaves no trace of it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from engine.images.image_store import ImageStore
from tests.images.image_factory import make_image

REPO_ROOT = Path(__file__).resolve().parents[2]

# The child records an image but dies (os._exit: no cleanup, no rollback, like
# SIGKILL) right after the images and image_layers rows were written, while
# the tags are being added inside the same transaction.
CHILD = """
import os, sys
from pathlib import Path
from engine.images import image_records
from engine.images.image_store import ImageStore
from tests.images.image_factory import make_image

store = ImageStore(Path(sys.argv[1]))
image = make_image(store, [{"a": b"1"}, {"b": b"2"}], tags=["app:1"])
def die(*args, **kwargs):
    os._exit(3)
image_records.set_tag = die
store.add_image(image)
"""


def test_crash_mid_add_leaves_no_image(tmp_path: Path) -> None:
    data_root = tmp_path / "berthtest-data"
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(data_root)], cwd=REPO_ROOT, timeout=60
    )
    assert child.returncode == 3
    store = ImageStore(data_root)
    try:
        conn = store.db.connection()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for table in ("images", "image_layers", "image_tags"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        assert store.list() == []
        # The blobs it had stored are unreferenced: gc takes them.
        assert len(store.gc()) == 3
    finally:
        store.close()


def test_recover_collects_orphans_and_keeps_resumable_partials(tmp_path: Path) -> None:
    import hashlib

    store = ImageStore(tmp_path / "berthtest-data")
    try:
        kept = make_image(store, [{"a": b"kept"}], tags=["kept:1"])
        store.add_image(kept)
        orphan = store.content.put(b"a blob a killed pull committed but never recorded")
        partial_data = b"the first half of a layer"
        partial = "sha256:" + hashlib.sha256(partial_data + b" and the rest").hexdigest()
        with store.content.writer(partial, len(partial_data) + 13) as writer:
            writer.write(partial_data)
            writer.abort()  # what a kill leaves: an ingest of a known digest, kept for resume
        unknown = store.content.writer()  # an ingest of unknown digest: nobody can resume it
        unknown.write(b"spool")
        unknown.abort(keep_partial=True)
        ingests = sorted(p.name for p in (store.content.root / "ingest").iterdir())
        assert len(ingests) == 2 and any(name.startswith("ref-") for name in ingests)

        assert store.recover() == [orphan]
        assert [p.name for p in (store.content.root / "ingest").iterdir()] == [partial.split(":")[1]]
        assert store.content.writer(partial, len(partial_data) + 13).offset == len(partial_data)
        record = store.get("kept:1")
        assert all(store.content.has(d) for d in [record.id, *(layer.blob_digest for layer in record.layers)])
    finally:
        store.close()

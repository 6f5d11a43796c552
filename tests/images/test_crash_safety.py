"""A process killed in the middle of recording an image leaves no trace of it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from engine.images.image_store import ImageStore

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

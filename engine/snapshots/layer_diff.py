"""Turn an overlay upper directory back into an OCI layer tar (for commit and build).

The reverse of :mod:`engine.snapshots.layer_apply`: overlay whiteouts (0/0
character devices) become ``.wh.<name>`` files and opaque directories
(``trusted.overlay.opaque=y``) get a ``.wh..wh..opq`` entry, per image-spec
layer.md "Whiteouts".  A whiteout is emitted only when the name exists in the
lower view (overlay leaves none otherwise, but an upper dir may come from
elsewhere).  Upper dirs that use overlay's redirect or metacopy features are
refused: a tar cannot say "this directory was renamed from there".

The output is deterministic (see :mod:`engine.snapshots.tar_writer`): depth
first, each directory before its children, siblings in byte order of their
names.  Sparse files are written with their holes filled in.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from engine.snapshots import whiteouts
from engine.snapshots.errors import LayerError
from engine.snapshots.tar_writer import DiffResult, LayerTarWriter, listxattr

log = logging.getLogger(__name__)


def diff_layer(lower_dirs: Sequence[Path], upper_dir: Path, out: BinaryIO) -> DiffResult:
    """Write the changes ``upper_dir`` holds over ``lower_dirs`` (top first) to ``out`` as a tar."""
    lowers = [Path(p) for p in lower_dirs]
    with LayerTarWriter(out) as tar:
        _check_overlay_xattrs(upper_dir, "")
        if _is_opaque(upper_dir):
            tar.add_marker(whiteouts.OPAQUE_MARKER, os.lstat(upper_dir))
        for rel, path, st in walk_tree(upper_dir):
            _check_overlay_xattrs(path, rel)
            if whiteouts.is_overlay_whiteout(st):
                if _in_lower_view(lowers, rel):
                    tar.add_whiteout(rel, st)
                continue
            tar.add(rel, path, st)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(path):
                tar.add_marker(f"{rel}/{whiteouts.OPAQUE_MARKER}", st)
    assert tar.result is not None
    log.info("diff of %s: %d entries, %d bytes, %s", upper_dir, tar.result.entries, tar.result.size, tar.result.diff_id)
    return tar.result


def walk_tree(top: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative name, path, lstat) of everything below ``top``: depth first, each directory
    right before its children, siblings in byte order (iterative: no recursion limit)."""
    stack: list[tuple[str, Path, Iterator[str]]] = [("", top, iter(_sorted_names(top)))]
    while stack:
        rel_dir, dir_path, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        rel = f"{rel_dir}/{name}" if rel_dir else name
        path = dir_path / name
        st = os.lstat(path)
        yield rel, path, st
        if stat.S_ISDIR(st.st_mode):
            stack.append((rel, path, iter(_sorted_names(path))))


def _sorted_names(path: Path) -> list[str]:
    return sorted(os.listdir(path), key=os.fsencode)


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, whiteouts.OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _check_overlay_xattrs(path: Path, rel: str) -> None:
    for name in listxattr(path):
        if name in whiteouts.UNSUPPORTED_XATTRS:
            raise LayerError(f"upper dir uses overlay feature {name}, which a layer tar cannot express", rel or ".")


def lower_lstat(lowers: Sequence[Path], rel: str) -> os.stat_result | None:
    """``rel`` looked up in the merge of ``lowers`` (top first) the way overlayfs merges them, with no
    symlink followed: a non-directory or a whiteout hides the name in the layers below it, an opaque
    directory hides the directories below it.  None when the merged view has no such path.

    Each step is an lstat of a name inside a directory already seen to be a real directory, so a layer's
    symlink (``link -> /``) can never lead the lookup to a host path.
    """
    layers = list(lowers)
    parts = rel.split("/")
    for i, part in enumerate(parts):
        found: os.stat_result | None = None
        merged: list[Path] = []  # this name's directories, top first, as far as the merge reaches
        for layer_dir in layers:
            path = layer_dir / part
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if whiteouts.is_overlay_whiteout(st):
                break
            if found is None:
                found = st
            if not (stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(found.st_mode)):
                break
            merged.append(path)
            if _is_opaque(path):
                break
        if found is None or i == len(parts) - 1:
            return found
        if not stat.S_ISDIR(found.st_mode):
            return None
        layers = merged
    return None


def _in_lower_view(lowers: Sequence[Path], rel: str) -> bool:
    """Whether ``rel`` is visible in the overlay of ``lowers`` (top first), without following symlinks."""
    return lower_lstat(lowers, rel) is not None



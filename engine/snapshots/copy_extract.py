"""Extract a `docker cp` tar into a directory of a root, safely (moby pkg/archive Unpack's rules).

Used by the daemon (PUT /containers/{id}/archive, inside the container's
root) and by `berth cp` (into a host directory).  Every path goes through
:class:`engine.snapshots.rooted.RootedDir`, so nothing is written outside the
root whatever symlinks the tar or the tree holds.
"""

from __future__ import annotations

import stat
import tarfile

from engine.snapshots import whiteouts
from engine.snapshots.errors import LayerError
from engine.snapshots.layer_apply import _Extractor, _lstat
from engine.snapshots.rooted import RootedDir, split_clean


class CopyExtractor(_Extractor):
    """layer_apply's extractor for copy tars: names land under ``dest`` (components below the root).

    moby archive.Unpack rules: a name or hardlink climbing above ``dest`` and a
    relative symlink pointing above it are refused (breakoutError); ``.`` is
    the destination itself and is left as it is; with
    ``no_overwrite_dir_non_dir`` a directory never replaces a non-directory nor
    the reverse; ``chown`` overrides every entry's owner (copyUIDGID, or the
    CLI's NoLchown); ``rebase`` = (old, new) renames entries like moby's
    RebaseArchiveEntries (first occurrence replaced).  ``.wh.`` names are not
    whiteouts here, so they are refused rather than misread.
    """

    def __init__(self, root: RootedDir, dest: list[str], *, no_overwrite_dir_non_dir: bool = False,
                 chown: tuple[int, int] | None = None, rebase: tuple[str, str] | None = None) -> None:
        super().__init__(root)
        self.dest = dest
        self.no_overwrite = no_overwrite_dir_non_dir
        self.chown = chown
        self.rebase = rebase

    def _apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if self.rebase is not None:
            old, new = self.rebase
            if old == "/":
                old = ""  # entries of a copied root are "/bin"...: the new name goes in front
            member.name = member.name.replace(old, new, 1)
            if member.islnk():
                member.linkname = member.linkname.replace(old, new, 1)
        rel = split_clean(member.name)
        if not rel:
            return
        if rel[-1].startswith(whiteouts.WHITEOUT_PREFIX):
            raise LayerError("names starting with .wh. are reserved", member.name)
        if member.islnk():
            member.linkname = "/".join(self.dest + split_clean(member.linkname, member.name))
        elif member.issym() and not member.linkname.startswith("/"):
            try:
                split_clean("/".join([*rel[:-1], member.linkname]))
            except LayerError:
                raise LayerError(f"invalid symlink -> {member.linkname!r}", member.name) from None
        if self.chown is not None:
            member.uid, member.gid = self.chown
        parts = self.dest + rel
        if self.no_overwrite:
            parent = self.root.make_dirs(parts[:-1])
            existing = _lstat(parts[-1], parent)
            if existing is not None and stat.S_ISDIR(existing.st_mode) != member.isdir():
                what = ("directory", "non-directory") if stat.S_ISDIR(existing.st_mode) else (
                    "non-directory", "directory")
                raise LayerError(f"cannot overwrite {what[0]} {'/' + '/'.join(parts)!r} with {what[1]} "
                                 f"{member.name!r}")
        member.name = "/".join(parts)
        super()._apply(tar, member)

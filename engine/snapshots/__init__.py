"""Layer snapshots: safe layer extraction, layer diffs and the snapshotters.

- ``layer_apply.apply_layer``: an OCI layer (tar/gzip/zstd) into a snapshot dir, never outside it.
- ``layer_diff.diff_layer``: an overlay upper dir back into an OCI layer tar.
- ``snapshotter.Snapshotter``: the interface (containerd's); ``snapshot_dirs.SnapshotDirs``: what the
  directory-based implementations share; ``overlay.OverlaySnapshotter`` and ``native.NativeSnapshotter``
  (full copies, for roots overlayfs cannot use); ``selection.open_snapshotter`` picks one.
- ``unpack.unpack``: an image's layers into committed snapshots keyed by ChainID.
- ``mounts.mount`` / ``mounts.unmount``: what a snapshotter hands out, with many-layer overlays.
"""

"""Layer snapshots: safe layer extraction, layer diffs and the overlayfs snapshotter.

- ``layer_apply.apply_layer``: an OCI layer (tar/gzip/zstd) into an empty snapshot dir.
- ``layer_diff.diff_layer``: an overlay upper dir back into an OCI layer tar.
- ``snapshotter.Snapshotter``: the interface; ``overlay.OverlaySnapshotter``: its overlayfs implementation.
- ``unpack.unpack``: an image's layers into committed snapshots keyed by ChainID.
- ``mounts.mount`` / ``mounts.unmount``: what a snapshotter hands out, with many-layer overlays.
"""

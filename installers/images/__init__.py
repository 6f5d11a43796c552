"""Berth's seed images, built offline from Debian packages: busybox, hello-world, debian:bookworm-slim.

`python -m installers.images build --out build/images` (what `make images` runs)
writes one `docker save` archive per image, reproducibly, and skips images whose
inputs (package digests, mirror Release files, builder code) did not change.
Each image is a recipe (`recipe.Recipe`) listed in `recipes.py`; `build.py`
turns a recipe's root filesystem into an archive with engine/images/archive_write.
"""

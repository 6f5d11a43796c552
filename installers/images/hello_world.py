"""hello-world:latest: FROM scratch, one tiny static binary compiled from hello.c."""

from __future__ import annotations

import shutil
from pathlib import Path

from installers.images.commands import require_tool, run
from installers.images.image_config import SeedConfig
from installers.images.recipe import SeedRootfs

SOURCE = Path(__file__).with_name("hello.c")

# The image's date: fixed, so the archive depends only on the source and the compiler.
EPOCH = 1767225600  # 2026-01-01T00:00:00Z

_CFLAGS = [
    "-static",
    "-Os",
    "-s",
    "-nostdlib",
    "-no-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-Wall",
    "-Wextra",
    "-Werror",
]


class HelloWorldRecipe:
    name = "hello-world"
    repo_tag = "hello-world:latest"

    def input_key(self) -> str:
        gcc = require_tool("gcc", "gcc")
        # The binary is the compiler's and linker's output: a new gcc or binutils may change it.
        return "\n".join(
            [
                run([gcc, "--version"]).splitlines()[0],
                run([gcc, "-print-prog-name=ld"]).strip(),
                run(["ld", "--version"]).splitlines()[0],
                " ".join(_CFLAGS),
            ]
        )

    def code_files(self) -> list[Path]:
        return [Path(__file__), SOURCE]

    def build_rootfs(self, workdir: Path) -> SeedRootfs:
        gcc = require_tool("gcc", "gcc")
        shutil.copyfile(SOURCE, workdir / "hello.c")
        rootfs = workdir / "rootfs"
        rootfs.mkdir()
        rootfs.chmod(0o755)
        # Relative paths and a fixed cwd keep build paths out of the binary.
        run([gcc, *_CFLAGS, "-o", "rootfs/hello", "hello.c"], cwd=workdir)
        (rootfs / "hello").chmod(0o755)
        return SeedRootfs(
            rootfs=rootfs,
            config=SeedConfig(
                cmd=["/hello"],
                created_by="berth seed image: gcc -static -Os -nostdlib installers/images/hello.c",
            ),
            epoch=EPOCH,
        )

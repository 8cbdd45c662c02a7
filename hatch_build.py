"""Build hook: compiles the writer path's optional C loops (`peebot_ingest/_speedups.c`).

Where a C compiler and the headers of Python and OpenSSL are present, the wheel carries the
compiled module (an editable install gets it beside the source); where they are not, the
build goes on without it, says so on stderr, and the Python loops run instead
(`peebot_ingest.speedups`). `PEEBOT_PURE_PYTHON=1` skips the compile. See
docs/ARCHITECTURE.md, "Ingest".
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "peebot_ingest._speedups"
SOURCE = "peebot_ingest/_speedups.c"


def compile_speedups(root: Path, out_dir: Path) -> Path:
    """Compile the module into `out_dir` with setuptools' build_ext; its path."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extension = Extension(MODULE, [SOURCE], libraries=["crypto"], extra_compile_args=["-O2"])
    dist = Distribution({"name": "peebot-speedups", "ext_modules": [extension]})
    dist.script_args = []
    command = build_ext(dist)
    command.build_lib = str(out_dir)
    command.build_temp = str(out_dir / "temp")
    command.ensure_finalized()
    cwd = os.getcwd()
    os.chdir(root)  # setuptools resolves the source path from here
    try:
        command.run()
    finally:
        os.chdir(cwd)
    return Path(command.get_ext_fullpath(MODULE))


class SpeedupsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if version == "editable":  # never leave a module built from an older source
            for stale in (root / "peebot_ingest").glob("_speedups.*.so"):
                stale.unlink()
        if os.environ.get("PEEBOT_PURE_PYTHON", "").strip() not in ("", "0"):
            return
        self._out_dir = Path(tempfile.mkdtemp(prefix="peebot-speedups-"))
        try:
            built = compile_speedups(root, self._out_dir)
        except Exception as exc:  # no compiler, no headers: the Python loops run
            print(
                f"peebot: the optional C loops were not built ({type(exc).__name__}: {exc}); "
                "the Python loops will run",
                file=sys.stderr,
            )
            return
        name = built.name
        if version == "editable":  # the package is imported from the source tree
            shutil.copy2(built, root / "peebot_ingest" / name)
        else:
            build_data["force_include"][str(built)] = f"peebot_ingest/{name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """The wheel is written: the compile's temporary folder goes."""
        out_dir: Path | None = getattr(self, "_out_dir", None)
        if out_dir is not None:
            shutil.rmtree(out_dir, ignore_errors=True)

"""Build hook: compile the native scanner (``nfkit/logs/_scan.c``) when the package is built.

The scanner is plain C loaded with ctypes (no Python headers needed). Without a C compiler the
build goes on and nfkit uses its pure-Python engine, which gives the same summaries, slower.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "nfkit/logs/_scan.c"
LIBRARY = "nfkit/logs/_scan.so"


class NativeScannerHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compile ``_scan.c`` into ``_scan.so`` next to it, and ship it in the wheel."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        source = Path(self.root, SOURCE)
        library = Path(self.root, LIBRARY)
        compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        command = [
            *shlex.split(compiler),
            "-O2",
            "-std=c99",
            "-shared",
            "-fPIC",
            "-o",
            str(library),
            str(source),
            "-lm",
        ]
        try:
            subprocess.run(command, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(
                f"nfkit: native scanner not built ({exc}); the pure-Python engine will be used",
                file=sys.stderr,
            )
            return
        if version != "editable":
            build_data["force_include"][str(library)] = LIBRARY
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

"""The ``wangge`` console script as the tests run it: the one beside this interpreter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

#: The console script installed with this interpreter (a venv's bin), else the one on PATH.
_BESIDE = Path(sys.executable).parent / "wangge"
WANGGE = str(_BESIDE) if _BESIDE.exists() else shutil.which("wangge")


def run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``wangge ARGS…`` and capture its output as text."""
    assert WANGGE, "the wangge console script is not installed"
    return subprocess.run(
        [WANGGE, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )

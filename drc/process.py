"""Child processes that cannot outlive the process that started them."""

from __future__ import annotations

import ctypes
import shutil
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """``preexec_fn``: have Linux SIGTERM this child when its parent thread dies.

    A stack killed outright (SIGKILL, OOM) then leaves no orphaned Temporal server,
    supervisord or worker holding its ports. Linux ties this to the spawning *thread*: spawn
    from a thread that lives as long as the child should (the main thread, here).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def venv_bin(name: str) -> str:
    """A console script installed beside this interpreter, else one on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (pip install -e . installs it)")
    return found

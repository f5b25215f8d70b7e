"""Child processes that cannot outlive the process that started them."""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
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


def spawn_logged(argv: list[str], out: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` logging to ``out`` (this run only), no stdin, dying with its parent."""
    with out.open("wb") as sink:
        return subprocess.Popen(
            argv,
            preexec_fn=die_with_parent,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop_child(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM ``proc``, wait up to ``timeout``, then SIGKILL it; a no-op once it has ended."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

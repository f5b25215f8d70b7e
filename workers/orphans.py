"""Processes ``drc up`` adopts: what a child of its own leaves running when it dies.

When supervisord dies, its programs keep running: that is the point, the platform must not go
down with its process manager. Linux reparents such orphans to the nearest ancestor marked as
a child subreaper instead of to init. ``drc up`` marks itself so (``adopt_orphans``), which lets
it see them (``orphans``), reap them when they exit, and stop them with the rest on Ctrl-C
(``stop_orphans``), so that no replica outlives ``drc up`` holding its port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Collection
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def adopt_orphans() -> None:
    """Make this process the parent of its descendants' orphans (``PR_SET_CHILD_SUBREAPER``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def orphans(own: Collection[int]) -> list[int]:
    """Living children of this process other than ``own`` (those it started); reaps the dead.

    ``own`` must hold every child a ``subprocess.Popen`` still waits for: reaping one of those
    here would steal its exit status.
    """
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in own:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last.
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) != me:
            continue
        if state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry), os.WNOHANG)
            continue
        found.append(int(entry))
    return found


def describe(pid: int) -> str:
    """``1234 (redis-server *:18301)``: a pid and its command line, for a log line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    return f"{pid} ({b' '.join(a for a in argv if a).decode(errors='replace')[:80]})"


def stop_orphans(own: Collection[int] = (), timeout: float = 10.0) -> list[int]:
    """SIGTERM every orphan's process group, SIGKILL what outlives ``timeout``; reap them all.

    Returns the pids it stopped. A supervisord program leads its own process group, so its
    children stop with it, as supervisord's ``stopasgroup`` would have done.
    """
    pids = orphans(own)
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (left := orphans(own)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        _signal_group(pid, signal.SIGKILL)
    while orphans(own):
        time.sleep(0.05)
    return pids


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:  # not a group leader: the process alone
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

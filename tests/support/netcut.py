"""Real network cuts for tests: iptables rules that drop one source address's packets to a port.

Each rule carries a comment naming the test's cut, and every rule is removed on exit, however
the test ends. Needs root and Debian's ``iptables`` (``make test`` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def _iptables() -> str:
    found = shutil.which("iptables") or shutil.which("iptables", path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError("iptables is not installed (Debian package iptables; make test-deps)")
    return found


class NetCut:
    """Drops TCP packets from chosen source addresses to chosen ports on 127.0.0.1."""

    def __init__(self) -> None:
        self._tag = f"drc-test-{uuid.uuid4().hex[:8]}"
        self._rules: list[list[str]] = []

    def cut(self, source: str, port: int) -> None:
        """From now on, ``source`` cannot reach 127.0.0.1:``port`` (packets dropped)."""
        rule = [
            "-s",
            source,
            "-d",
            "127.0.0.1",
            "-p",
            "tcp",
            "--dport",
            str(port),
            "-j",
            "DROP",
            "-m",
            "comment",
            "--comment",
            self._tag,
        ]
        subprocess.run([_iptables(), "-I", "INPUT", *rule], check=True)
        self._rules.append(rule)

    def heal(self) -> None:
        """Remove every cut made here."""
        while self._rules:
            rule = self._rules.pop()
            subprocess.run([_iptables(), "-D", "INPUT", *rule], check=False)


@contextmanager
def netcut() -> Iterator[NetCut]:
    """A ``NetCut`` whose rules are all gone when the block ends."""
    cuts = NetCut()
    try:
        yield cuts
    finally:
        cuts.heal()

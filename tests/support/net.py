"""Free ports and polling helpers."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


_HANDED_OUT: set[int] = set()
# Below the kernel's ephemeral range (32768-60999 here): a port taken from that range can be
# grabbed a moment later by any outgoing connection or by a server told to pick a random
# port (Temporal's dev server does, for its HTTP and metrics ports), and then HAProxy or a
# demo replica fails to bind it.
_LISTEN_PORTS = (20000, 32000)


def free_port() -> int:
    """A TCP port on 127.0.0.1, outside the ephemeral range, not listened on right now."""
    for _ in range(1000):
        port = random.randrange(*_LISTEN_PORTS)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port in {_LISTEN_PORTS}")


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    """Block until something accepts connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


async def assert_eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Call ``check`` until it stops raising AssertionError; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(interval)

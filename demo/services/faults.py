"""A replica's fault switch: marker files that make it slow or make it fail part of its requests.

While the file named by ``--latency-marker`` exists, every response (heartbeat included) is
delayed by the milliseconds it holds; while the file named by ``--error-marker`` exists, the
share of requests it holds (0–1) is answered 500. Each takes effect on the next request and
ends when the file is removed. Unreadable content counts as no fault.

The errors are spread evenly, not drawn at random, so tests can rely on them: each kind of
request (method, path, User-Agent) keeps its own accumulator and fails each time the
accumulated share reaches one. At 0.3, each kind fails exactly 3 requests in every 10, never
two in a row: drc's heartbeats see 30 %, whatever HAProxy's checks or other clients do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

MAX_KINDS = 256
"""Request kinds whose accumulators are kept; beyond, they all start over (bounded memory)."""


@dataclass
class Faults:
    """The marker files of one replica and the accumulators of its injected errors."""

    latency_marker: Path | None = None
    error_marker: Path | None = None
    _owed: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def delay_ms(self) -> float:
        """Milliseconds to add to a response now (0 without the marker)."""
        return max(_read_number(self.latency_marker), 0.0)

    def error_share(self) -> float:
        """The share of requests to answer 500 now, within 0 and 1 (0 without the marker)."""
        return min(max(_read_number(self.error_marker), 0.0), 1.0)

    def fails(self, kind: tuple[str, str, str]) -> bool:
        """Whether this request of ``kind`` is one of the share to fail."""
        share = self.error_share()
        if share <= 0.0:
            return False
        if kind not in self._owed and len(self._owed) >= MAX_KINDS:
            self._owed.clear()
        owed = self._owed.get(kind, 0.0) + share
        failing = owed >= 1.0 - 1e-9  # float sums of 0.1 must still fail every tenth request
        self._owed[kind] = owed - 1.0 if failing else owed
        return failing


def _read_number(marker: Path | None) -> float:
    if marker is None:
        return 0.0
    try:
        return float(marker.read_text().strip() or 0)
    except (OSError, ValueError):  # absent, or being rewritten: no fault this time
        return 0.0


FAULTS = web.AppKey("faults", Faults)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Delay, then maybe fail, every request as the replica's marker files say."""
    faults = request.app.get(FAULTS)
    if faults is None:
        return await handler(request)
    delay = faults.delay_ms()
    if delay > 0:
        await asyncio.sleep(delay / 1000)
    kind = (request.method, request.path, request.headers.get("User-Agent", ""))
    if faults.fails(kind):
        share = faults.error_share()
        return web.json_response(
            {"error": f"injected fault: {share:g} of requests fail ({faults.error_marker})"},
            status=500,
        )
    return await handler(request)

"""A background heartbeat for activities that do one thing and may take seconds doing it.

Temporal notices that the worker running an activity died only when a timeout expires: the
start-to-close timeout (30-60 s for a runbook step) unless the activity heartbeats and the
caller sets a ``heartbeat_timeout``. ``heartbeating`` makes any async activity heartbeat every
``HEARTBEAT_EVERY_S`` while it runs, so a caller that sets a heartbeat timeout of a few seconds
(5 s, as for the watch: ``workflows/runbook.py``, ``workflows/restart.py``) gets the step
retried on another worker seconds after its worker died, and a cancellation reaches the
activity while it waits (cancellations are delivered on heartbeats). Heartbeats write no
history, and the SDK sends at most one per 0.8 x the heartbeat timeout: beating often is cheap.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity

HEARTBEAT_EVERY_S = 0.5
"""How often a ``heartbeating`` activity heartbeats; the SDK throttles what it sends on."""

P = ParamSpec("P")
T = TypeVar("T")


def heartbeating(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Wrap an async activity so that it heartbeats (no details) until it returns or raises.

    Put it under ``@activity.defn``. An activity that heartbeats details of its own may keep
    doing so; the background beats carry none, which only thins what the Web UI shows.
    """

    @functools.wraps(fn)
    async def beating(*args: P.args, **kwargs: P.kwargs) -> T:
        beat = asyncio.create_task(_beat())
        try:
            return await fn(*args, **kwargs)
        finally:
            beat.cancel()  # it waits in sleep (or never ran): it beats no more

    return beating


async def _beat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_S)

"""Keep a long-running drc process's long-lived heap away from the garbage collector."""

from __future__ import annotations

import asyncio
import gc


async def freeze_heap() -> None:
    """Keep the long-lived heap out of the garbage collector's sight.

    With 1,000 cached monitors a full collection walked ~1.2 M objects and froze the event
    loop for ~1 s at a time, so probe ticks came late or not at all (bench/worker_scale.py).
    The monitors' state lives for the worker's life, and more of it arrives while monitors
    start and change: freeze what exists now and then (cheap; a cycle of garbage frozen with
    it is kept, a small price), so that collections only ever walk what is new.
    """
    # Collect the young generation less often: each probe allocates a few hundred objects,
    # almost all freed by reference counting; at the default threshold (700) the collector
    # ran ~150 times a second and its pauses were most of the probe ticks' lateness.
    gc.set_threshold(20_000, 20, 20)
    delay = 10.0
    while True:
        await asyncio.sleep(delay)
        gc.freeze()
        delay = min(delay * 2, 600.0)

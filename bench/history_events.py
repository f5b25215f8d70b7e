"""History events a healthy service's monitor writes over a stretch of time (design notes §2).

Runs the real stack on free ports with the demo catalog's settings, waits until every
service is healthy, then reads each monitor's history length before and after the window.

    .venv/bin/python bench/history_events.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import record  # noqa: E402
from drc.names import monitor_id  # noqa: E402
from tests.support.net import assert_eventually  # noqa: E402
from tests.support.stack import DrcStack, demo_like_catalog, running_drc  # noqa: E402


async def lengths(stack: DrcStack) -> dict[str, int]:
    out = {}
    for service in stack.catalog.services:
        desc = await stack.client.get_workflow_handle(monitor_id(service.name)).describe()
        out[service.name] = int(desc.history_length)
    return out


async def all_healthy(stack: DrcStack) -> None:
    for status in (await stack.status()).values():
        assert status.state.value == "healthy", status


async def main(minutes: float) -> None:
    catalog = demo_like_catalog()
    with tempfile.TemporaryDirectory(prefix="drc-bench-") as home:
        async with running_drc(Path(home), catalog) as stack:
            await assert_eventually(lambda: all_healthy(stack), timeout=60)
            before = await lengths(stack)
            await asyncio.sleep(minutes * 60)
            after = await lengths(stack)
    added = {name: after[name] - before[name] for name in after}
    probe = catalog.services[0].probe
    replicas = sum(len(s.replicas) for s in catalog.services)
    figures = {"events_added": added, "history_after": after, "max_added": max(added.values())}
    line = (
        f"history_events healthy for {minutes:g} min, {len(added)} services, {replicas} replicas "
        f"probed every {probe.interval_ms} ms: events added per monitor {added} "
        f"(history lengths {after})"
    )
    record("history_events", {"minutes": minutes, "probe": probe.model_dump()}, figures, line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.minutes))
    sys.stdout.flush()
    os._exit(0)

"""The ``vantage_probe`` activity: a replica's heartbeat, seen from one vantage point.

Runs on the vantage point's own task queue (``drc-probes-<name>``), in a
``drc worker --region <name>`` whose probes leave from the vantage point's source address.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.probes.engine import ProbeEngine
from drc.names import VANTAGE_PROBE
from drc.vantage import VantageProbeInput, VantageVote


class VantageActivities:
    """The vantage point's probe, through its own engine."""

    def __init__(self, name: str, engine: ProbeEngine) -> None:
        self._name, self._engine = name, engine

    @activity.defn(name=VANTAGE_PROBE)
    async def vantage_probe(self, inp: VantageProbeInput) -> VantageVote:
        """Down only if every attempt fails. Read-only: a retry only probes again."""
        errors: list[str] = []
        for attempt in range(inp.attempts):
            if attempt:
                await asyncio.sleep(inp.gap_ms / 1000)
            result = await self._engine.heartbeat(inp.replica, inp.timeout_ms)
            if result.ok:
                return VantageVote(self._name, False, f"answered in {result.latency_ms:.1f} ms")
            errors.append(result.error or "no answer")
        return VantageVote(self._name, True, f"{inp.attempts} misses ({errors[-1]})")

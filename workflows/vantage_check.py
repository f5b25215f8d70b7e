"""Before a repair: whether the replica is objectively down, or only cut off from drc's watch.

Deterministic workflow code. With vantage points in the catalog, a failure that process
control does not corroborate (the process still runs) is put to the other vantage points
(``vantage_probe`` on each one's task queue, concurrently, bounded in time); the quorum rule
is ``drc.vantage.quorum``. Behind the ``vantage-quorum`` patch.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from drc.names import VANTAGE_PROBE, vantage_queue
    from drc.vantage import VantageProbeInput, VantageVote, Verdict, quorum
from workflows.monitor_core import MonitorCore

PATCH_VANTAGE = "vantage-quorum"
PATCH_REGION_SILENT = "vantage-region-silent"
"""The replica's own region's silent vantage point counts as down (``drc.vantage.quorum``)."""
ASK_WITHIN = timedelta(seconds=1)
"""A vantage point that has not picked the probe up by then does not vote (its worker is gone)."""


async def objectively_down(core: MonitorCore, replica: str) -> Verdict | None:
    """The quorum's verdict on ``replica``; None when no quorum applies (act on the watch)."""
    cfg, st = core.cfg, core.st
    if not cfg.vantage_points or not workflow.patched(PATCH_VANTAGE):
        return None
    track = st.tracks.get(replica)
    if track is not None and track.dead is not None:
        return None  # process control saw the process gone: no view problem
    spec = cfg.service.replica(replica)
    assert spec is not None
    probe = cfg.service.probe
    inp = VantageProbeInput(spec, probe.timeout_ms)
    own = VantageVote(cfg.watch_from, True, "drc's watch") if cfg.watch_from else None
    others = [v for v in cfg.vantage_points if v != cfg.watch_from]
    asks = [
        workflow.execute_activity(
            VANTAGE_PROBE,
            inp,
            result_type=VantageVote,
            task_queue=vantage_queue(name),
            schedule_to_start_timeout=ASK_WITHIN,
            start_to_close_timeout=timedelta(milliseconds=probe.timeout_ms * 2 + 500),
            retry_policy=RetryPolicy(maximum_attempts=1),
            summary=f"is {replica} down from {name}?",
        )
        for name in others
    ]
    answers = await asyncio.gather(*asks, return_exceptions=True)
    votes = [a for a in answers if isinstance(a, VantageVote)]
    for name, answer in zip(others, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, ActivityError):
            raise answer  # not a vantage point's silence: a bug, fail the task
        if isinstance(answer, ActivityError):
            workflow.logger.info("vantage point %s did not answer: %s", name, answer.cause)
    region = spec.region if workflow.patched(PATCH_REGION_SILENT) else None
    return quorum(replica, cfg.vantage_points, [*([own] if own else []), *votes], region)

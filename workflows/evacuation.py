"""EvacuateRegion: move every service off a lost region, dependencies first; re-protect after.

Started by the Fleet workflow when it raises ``region_down`` (``drc.evacuation``). One child
``evacuate-region/<region>/<service>`` per service with a replica there, by dependency level:
a level's children run together and the next level starts once they have ended, so a
dependent is served from its new region only after its dependencies are. Each child asks the
service's monitor to fail over (the operator's path, under the name ``fleet``): the monitor's
guards and fencing apply, and an automatic failover it started first is attached to.

Then the region's return: every ``return_check_s`` each service is asked to take its
replicas there back (re-protect the former primary as a standby, restart the others) until
all of them are back. The evacuation ends with the region returned; the fleet holds automatic
repairs of the region's replicas until then, so nothing restarts into a lost region.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from drc.evacuation import (
        EvacuationInput,
        EvacuationProgress,
        EvacuationResult,
        EvacuationStep,
        Evacuee,
        EvacueeRequest,
        RestoreStep,
    )
    from drc.names import (
        EVACUATE_SERVICE,
        EVACUATION_WORKFLOW,
        EVACUEE_WORKFLOW,
        RESTORE_SERVICE,
        evacuee_id,
    )

STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)
"""A monitor that does not answer (its worker away) is asked again, for as long as it takes."""


@workflow.defn(name=EVACUEE_WORKFLOW)
class EvacuateServiceWorkflow:
    """One service's part in its region's evacuation."""

    @workflow.run
    async def run(self, request: EvacueeRequest) -> EvacuationStep:
        """Served from outside the region, or why not."""
        step: EvacuationStep = await workflow.execute_activity(
            EVACUATE_SERVICE,
            request,
            result_type=EvacuationStep,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=STEP_RETRY,
            summary=f"serve {request.evacuee.service} from outside {request.region}",
        )
        return step


@workflow.defn(name=EVACUATION_WORKFLOW)
class EvacuateRegionWorkflow:
    """See the module docstring."""

    @workflow.run
    async def run(self, inp: EvacuationInput) -> EvacuationResult:
        """Evacuate level by level, then wait for the region's return and re-protect."""
        progress = inp.progress
        if progress is None:
            result = EvacuationResult(inp.region)
            for level in inp.levels:
                result.steps.extend(await self._evacuate(inp, level))
            result.served_elsewhere_at = workflow.now().timestamp()
            progress = EvacuationProgress(result, [e for lv in inp.levels for e in lv])
        while progress.pending:
            progress.pending = await self._restore_round(inp, progress)
            if not progress.pending:
                break
            if workflow.info().is_continue_as_new_suggested():
                inp.progress = progress
                workflow.continue_as_new(inp)
            await workflow.sleep(timedelta(seconds=inp.return_check_s))
        progress.result.returned_at = workflow.now().timestamp()
        return progress.result

    async def _evacuate(self, inp: EvacuationInput, level: list[Evacuee]) -> list[EvacuationStep]:
        handles = [
            await workflow.start_child_workflow(
                EVACUEE_WORKFLOW,
                EvacueeRequest(inp.region, evacuee, inp.reason),
                id=evacuee_id(inp.region, evacuee.service),
                result_type=EvacuationStep,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"evacuate {evacuee.service} from {inp.region}",
            )
            for evacuee in level
        ]
        ends = await asyncio.gather(*handles, return_exceptions=True)
        steps: list[EvacuationStep] = []
        for evacuee, end in zip(level, ends, strict=True):
            if isinstance(end, BaseException):
                steps.append(EvacuationStep(evacuee.service, "failed", f"its step ended: {end}"))
            else:
                steps.append(end)
        return steps

    async def _restore_round(
        self, inp: EvacuationInput, progress: EvacuationProgress
    ) -> list[Evacuee]:
        """One attempt per pending service; those still waiting for the region."""
        attempts = [
            workflow.execute_activity(
                RESTORE_SERVICE,
                EvacueeRequest(inp.region, evacuee, inp.reason),
                result_type=RestoreStep,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=STEP_RETRY,
                summary=f"take {evacuee.service}'s replicas in {inp.region} back",
            )
            for evacuee in progress.pending
        ]
        still: list[Evacuee] = []
        for evacuee, step in zip(progress.pending, await asyncio.gather(*attempts), strict=True):
            if step.outcome == "waiting":
                still.append(evacuee)
            else:
                progress.result.restored.append(step)
        return still

"""ScheduledSwitchover: a durable timer, then the monitor's ``failover``; cancel to call it off.

The timer is Temporal's: the switchover happens at ``scheduled_at`` whatever restarts between
now and then. Cancelling the workflow before then (``DELETE /recovery/switchover/{service}``,
or the Web UI) ends it without touching the service.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from drc.names import REQUEST_FAILOVER, SWITCHOVER_WORKFLOW
    from drc.switchover import FailoverCall, SwitchoverInput, SwitchoverResult


@workflow.defn(name=SWITCHOVER_WORKFLOW)
class ScheduledSwitchoverWorkflow:
    """Wait until ``scheduled_at``, then fail the service over once."""

    def __init__(self) -> None:
        self._inp: SwitchoverInput | None = None

    @workflow.run
    async def run(self, inp: SwitchoverInput) -> SwitchoverResult:
        """Sleep on a durable timer, then send the ``failover`` update (refusals included)."""
        self._inp = inp
        wait = inp.scheduled_at - workflow.now().timestamp()
        if wait > 0:
            await workflow.sleep(timedelta(seconds=wait))
        call = FailoverCall(
            inp.service,
            inp.to,
            f"scheduled switchover: {inp.reason}",
            inp.operator,
            update_id=f"switchover-{workflow.info().run_id}",
        )
        result: SwitchoverResult = await workflow.execute_activity(
            REQUEST_FAILOVER,
            call,
            result_type=SwitchoverResult,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=5),
        )
        if result.refused:
            workflow.logger.warning("switchover of %s refused: %s", inp.service, result.refused)
        return result

    @workflow.query
    def scheduled(self) -> SwitchoverInput | None:
        """What is scheduled: service, time, target, operator."""
        return self._inp

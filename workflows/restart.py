"""Restart one replica: stop it (even if hung), start it, wait until its health probe passes."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from drc.model import ProbeResult
    from drc.names import CHECK_RECOVERED, START_PROCESS, STOP_PROCESS
    from drc.repair import (
        ProcessInput,
        ProcessResult,
        RestartInput,
        RestartResult,
        WaitHealthyInput,
    )
from workflows.telemetry import log_decision, run_incident

PROCESS_CALL_TIMEOUT = timedelta(seconds=30)
PROCESS_HEARTBEAT_TIMEOUT = timedelta(seconds=5)
"""stop_process and start_process heartbeat while they run: a dead worker's call is retried
elsewhere after this, not after PROCESS_CALL_TIMEOUT."""
PROCESS_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=5,
    non_retryable_error_types=["ProcessExited"],
)
# A restarted replica is usually up within a few hundred ms: poll often at first (a 1.5
# backoff from 100 ms was measured to notice a replica ~0.5 s after it answered), then ease off
# for one that loads for long.
RECOVERY_POLL = RetryPolicy(
    initial_interval=timedelta(milliseconds=50),
    backoff_coefficient=1.2,
    maximum_interval=timedelta(milliseconds=500),
    non_retryable_error_types=["ProcessExited"],
)


@workflow.defn(name="RestartReplica")
class RestartReplicaWorkflow:
    """One restart attempt; the monitor decides whether another is worth making."""

    def __init__(self) -> None:
        self._step = "pending"

    @workflow.query
    def step(self) -> str:
        """The step this restart is at: stopping, starting, waiting-healthy, done or failed."""
        return self._step

    @workflow.run
    async def run(self, inp: RestartInput) -> RestartResult:
        """Stop, start, wait healthy; tell the monitor how it went; fail loudly if it didn't."""
        started = workflow.now()
        _log(inp, "restart-started", f"restarting {inp.replica.name}: {inp.reason}")
        try:
            await self._restart(inp)
        except ActivityError as err:
            self._step = "failed"
            why = _describe(err, inp.health_timeout_s)
            result = self._result(
                inp, False, f"restart of {inp.replica.name} failed: {why}", started
            )
            _log(inp, "restart-failed", result.reason, logging.WARNING)
            await self._notify(inp, result)
            raise ApplicationError(result.reason, type="RestartFailed", non_retryable=True) from err
        self._step = "done"
        took = (workflow.now() - started).total_seconds()
        reason = f"restarted {inp.replica.name}; healthy {took:.2f} s after the restart began"
        result = self._result(inp, True, reason, started)
        _log(inp, "restart-succeeded", reason)
        await self._notify(inp, result)
        return result

    async def _restart(self, inp: RestartInput) -> None:
        assert inp.replica.process is not None, "the monitor only restarts controlled replicas"
        process = ProcessInput(supervisor_url=inp.supervisor_url, process=inp.replica.process)
        self._step = "stopping"
        await workflow.execute_activity(
            STOP_PROCESS,
            process,
            result_type=ProcessResult,
            start_to_close_timeout=PROCESS_CALL_TIMEOUT,
            heartbeat_timeout=PROCESS_HEARTBEAT_TIMEOUT,
            retry_policy=PROCESS_RETRY,
        )
        self._step = "starting"
        await workflow.execute_activity(
            START_PROCESS,
            process,
            result_type=ProcessResult,
            start_to_close_timeout=PROCESS_CALL_TIMEOUT,
            heartbeat_timeout=PROCESS_HEARTBEAT_TIMEOUT,
            retry_policy=PROCESS_RETRY,
        )
        self._step = "waiting-healthy"
        check = WaitHealthyInput(
            replica=inp.replica, supervisor_url=inp.supervisor_url, timeout_ms=1000
        )
        await workflow.execute_activity(
            CHECK_RECOVERED,
            check,
            result_type=ProbeResult,
            start_to_close_timeout=timedelta(seconds=5),
            schedule_to_close_timeout=timedelta(seconds=inp.health_timeout_s),
            retry_policy=RECOVERY_POLL,
        )

    @staticmethod
    def _result(inp: RestartInput, ok: bool, reason: str, started: datetime) -> RestartResult:
        return RestartResult(
            service=inp.service,
            replica=inp.replica.name,
            ok=ok,
            reason=reason,
            started_at=started,
            finished_at=workflow.now(),
            workflow_id=workflow.info().workflow_id,
            run_id=workflow.info().run_id,
        )

    @staticmethod
    async def _notify(inp: RestartInput, result: RestartResult) -> None:
        if inp.monitor_workflow_id:
            monitor = workflow.get_external_workflow_handle(inp.monitor_workflow_id)
            await monitor.signal("restart_finished", result)


def _log(inp: RestartInput, action: str, reason: str, level: int = logging.INFO) -> None:
    log_decision(
        "%s %s/%s: %s",
        action,
        inp.service,
        inp.replica.name,
        reason,
        level=level,
        service=inp.service,
        replica=inp.replica.name,
        incident=run_incident(),
        action=action,
        reason=reason,
    )


def _describe(err: ActivityError, health_timeout_s: float) -> str:
    """The sentence for a failed step: the application's own message, or what timed out."""
    cause = err.cause
    if isinstance(cause, ActivityTimeoutError):
        last = cause.cause.message if isinstance(cause.cause, ApplicationError) else "no answer"
        return f"not healthy within {health_timeout_s:g} s (last: {last})"
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)

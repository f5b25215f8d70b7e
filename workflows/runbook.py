"""Run a runbook as a saga: guard, act, remember the undo; on failure undo in reverse.

The parsed runbook is part of the input, so the history records exactly what ran. Every
step leaves a ``StepRecord`` in a journal (chaostoolkit-style) that the ``progress`` query
returns while it runs.

How it ends (decided here, relied on by callers):

* every step succeeded: the workflow COMPLETES with a ``RunbookResult``, outcome "succeeded";
* a step failed and every compensation ran: the workflow FAILS with a non-retryable
  ``ApplicationError`` type "RunbookCompensated"; if a compensation failed too (the others
  still run), type "RunbookCompensationFailed". Either way the message is the reason
  sentence and ``details[0]`` is the full ``RunbookResult`` (``result_from_failure`` rebuilds
  it), so Temporal shows a failed repair as FAILED and callers still get the journal;
* the runbook, its args or its params are invalid: FAILS with type "InvalidRunbook" before
  any activity runs;
* cancelled: the compensations of the completed steps run, then the workflow ends CANCELED
  (the ``progress`` query still answers with the journal).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from pydantic import TypeAdapter

    from drc.catalog import Service
    from drc.errors import RunbookError
    from drc.repair import ActionInput, ActionResult, Outcome, RunbookResult, StepRecord
    from runbooks.actions import ACTIONS
    from runbooks.runbook import (
        ActionCall,
        RetrySpec,
        Runbook,
        Step,
        check_params,
        context_values,
        describe_call,
        render_args,
        validate_runbook,
    )
from workflows.telemetry import log_decision, run_incident

INVALID = "InvalidRunbook"
COMPENSATED = "RunbookCompensated"
COMPENSATION_FAILED = "RunbookCompensationFailed"


@dataclass
class RunbookInput:
    """Run ``runbook`` against ``service``; ``trigger`` says who or what asked, and why."""

    runbook: Runbook
    params: dict[str, str]
    service: Service
    supervisor_url: str
    allowed_commands: list[str] = field(default_factory=list)
    """argv[0] values the ``command`` action may run."""
    trigger: str = ""
    monitor_workflow_id: str | None = None


@dataclass
class _Planned:
    """A step with its args (and its guard's and compensation's) already rendered."""

    step: Step
    args: dict[str, Any]
    guard: dict[str, Any] | None
    compensation: dict[str, Any] | None


def result_from_failure(err: BaseException) -> RunbookResult | None:
    """The ``RunbookResult`` carried by a failed run's error (or any error in its cause chain)."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type in (COMPENSATED, COMPENSATION_FAILED):
            if cause.details:
                return TypeAdapter(RunbookResult).validate_python(cause.details[0])
        cause = cause.__cause__ or getattr(cause, "cause", None)
    return None


@workflow.defn(name="Runbook")
class RunbookWorkflow:
    """Interprets one runbook; a saga engine, not a per-runbook workflow."""

    def __init__(self) -> None:
        self._journal: list[StepRecord] = []
        self._in_guard = False

    @workflow.query
    def progress(self) -> list[StepRecord]:
        """The journal so far: one record per step, in order."""
        return self._journal

    @workflow.run
    async def run(self, inp: RunbookInput) -> RunbookResult:
        """Validate, then run every step; see the module docstring for how it ends.

        Whatever the end but cancellation, the monitor named in the input (if any) is sent
        ``runbook_finished`` with the result: that signal reaches the monitor's current run,
        so it survives the monitor's continue-as-new.
        """
        try:
            result = await self._run(inp)
        except ApplicationError as err:
            failed = result_from_failure(err)
            if failed is None:
                _log(inp, "rejected", "runbook %s on %s rejected: %s", err.message, logging.WARNING)
                failed = RunbookResult(
                    inp.runbook.name, "rejected", err.message, self._journal, inp.trigger
                )
            await _notify(inp, failed)
            raise
        await _notify(inp, result)
        return result

    async def _run(self, inp: RunbookInput) -> RunbookResult:
        plan = _plan(inp)  # raises InvalidRunbook before any activity runs
        self._journal = [StepRecord(p.step.name, p.step.action, "skipped") for p in plan]
        _log(inp, "started", "runbook %s on %s (%s)", inp.trigger or "no trigger")
        undo: list[int] = []  # indexes of the completed steps that have a compensation
        for i, planned in enumerate(plan):
            record = self._journal[i]
            record.started_at = workflow.now()
            try:
                record.summary = await self._step(planned, inp)
            # A failed activity or a cancellation (CancelledError is not an Exception). Not
            # BaseException: a bug in this code must fail the workflow task and be retried
            # after a fix, not trigger compensations that a replay would then diverge from.
            except (ActivityError, asyncio.CancelledError) as err:
                record.status = "failed"
                record.finished_at = workflow.now()
                cancelled = _is_cancellation(err)
                record.summary = _failure(planned, err, cancelled, self._in_guard)
                reason = await self._compensate(plan, undo, inp, record.summary)
                if cancelled:
                    _log(inp, "cancelled", "runbook %s on %s cancelled: %s", reason)
                    raise
                result = self._result(inp, reason)
                kind = COMPENSATED if result.outcome == "compensated" else COMPENSATION_FAILED
                _log(inp, result.outcome, "runbook %s on %s: %s", reason, logging.WARNING)
                raise ApplicationError(reason, result, type=kind, non_retryable=True) from err
            record.status = "succeeded"
            record.finished_at = workflow.now()
            _log(inp, "step-succeeded", "runbook %s on %s: %s", record.summary, step=record.name)
            if planned.compensation is not None:
                undo.append(i)
        reason = f"runbook {inp.runbook.name} succeeded: " + ", ".join(p.step.name for p in plan)
        _log(inp, "succeeded", "runbook %s on %s: %s", reason)
        return RunbookResult(inp.runbook.name, "succeeded", reason, self._journal, inp.trigger)

    async def _step(self, planned: _Planned, inp: RunbookInput) -> str:
        step = planned.step
        self._in_guard = False
        if step.guard is not None and planned.guard is not None:
            self._in_guard = True
            await self._call(step.guard.action, planned.guard, step, inp, kind="guard of ")
            self._in_guard = False
        result = await self._call(step.action, planned.args, step, inp)
        return result.summary

    async def _compensate(
        self, plan: list[_Planned], undo: list[int], inp: RunbookInput, failure: str
    ) -> str:
        """Undo the completed steps in reverse, each on its own; the reason sentence."""
        undone: list[str] = []
        failed: list[str] = []
        for i in reversed(undo):
            planned, record = plan[i], self._journal[i]
            assert planned.step.compensation is not None and planned.compensation is not None
            call = planned.step.compensation
            try:
                result = await self._call(
                    call.action, planned.compensation, planned.step, inp, kind="undo "
                )
            except ActivityError as err:
                record.status = "compensation_failed"
                record.compensation = (
                    f"{describe_call(call.action, planned.compensation)}: {_why(err)}"
                )
                failed.append(f"compensation of {planned.step.name} ({record.compensation}) failed")
                continue
            record.status = "compensated"
            record.compensation = result.summary
            undone.append(planned.step.name)
        parts = [failure]
        if undone:
            parts.append("compensated " + ", ".join(undone) + " in reverse")
        parts.extend(failed)
        if not undo:
            parts.append("nothing to compensate")
        return "; ".join(parts)

    async def _call(
        self, action: str, args: dict[str, Any], step: Step, inp: RunbookInput, kind: str = ""
    ) -> ActionResult:
        # The activity type comes from the registry, hence execute_activity by name.
        result: ActionResult = await workflow.execute_activity(
            ACTIONS[action].activity,
            ActionInput(
                action=action,
                args=args,
                service=inp.service,
                supervisor_url=inp.supervisor_url,
                allowed_commands=list(inp.allowed_commands),
            ),
            result_type=ActionResult,
            start_to_close_timeout=timedelta(seconds=step.timeout_s),
            # Actions heartbeat every 0.5 s (activities/heartbeat.py): a dead worker's step is
            # retried elsewhere after this, not after its whole start-to-close timeout.
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=_retry(step.retry),
            # Shown in the Web UI beside the activity: the saga reads step by step there.
            summary=f"{kind}{step.name}: {describe_call(action, args)}"[:200],
        )
        return result

    def _result(self, inp: RunbookInput, reason: str) -> RunbookResult:
        failed = any(r.status == "compensation_failed" for r in self._journal)
        outcome: Outcome = "failed_compensation" if failed else "compensated"
        return RunbookResult(inp.runbook.name, outcome, reason, self._journal, inp.trigger)


def _log(
    inp: RunbookInput,
    status: str,
    message: str,
    said: str,
    level: int = logging.INFO,
    step: str | None = None,
) -> None:
    """A decision line of this run: ``message % (runbook, service, said)``, with the incident."""
    log_decision(
        message,
        inp.runbook.name,
        inp.service.name,
        said,
        level=level,
        service=inp.service.name,
        incident=run_incident(),
        runbook=inp.runbook.name,
        action=f"runbook-{status}",
        step=step,
        reason=said,
    )


async def _notify(inp: RunbookInput, result: RunbookResult) -> None:
    info = workflow.info()
    result.workflow_id, result.run_id = info.workflow_id, info.run_id
    if inp.monitor_workflow_id:
        monitor = workflow.get_external_workflow_handle(inp.monitor_workflow_id)
        await monitor.signal("runbook_finished", result)


def _plan(inp: RunbookInput) -> list[_Planned]:
    """Every step with rendered args, or ApplicationError "InvalidRunbook" naming each issue."""
    issues = validate_runbook(inp.runbook) + check_params(inp.runbook, inp.params)
    if issues:
        raise _invalid(inp, "; ".join(str(issue) for issue in issues))
    values = {**context_values(inp.service, inp.supervisor_url), **inp.params}
    try:
        return [
            _Planned(
                step=step,
                args=render_args(step.args, values),
                guard=_render(step.guard, values),
                compensation=_render(step.compensation, values),
            )
            for step in inp.runbook.steps
        ]
    except RunbookError as exc:
        raise _invalid(inp, str(exc)) from None


def _render(call: ActionCall | None, values: dict[str, str]) -> dict[str, Any] | None:
    return None if call is None else render_args(call.args, values)


def _invalid(inp: RunbookInput, problem: str) -> ApplicationError:
    return ApplicationError(
        f"runbook {inp.runbook.name} cannot run on {inp.service.name}: {problem}",
        type=INVALID,
        non_retryable=True,
    )


def _retry(spec: RetrySpec) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=spec.initial_interval_ms),
        backoff_coefficient=spec.backoff,
        maximum_interval=timedelta(
            milliseconds=max(spec.max_interval_ms, spec.initial_interval_ms)
        ),
        maximum_attempts=spec.max_attempts,
    )


def _is_cancellation(err: BaseException) -> bool:
    # A cancelled workflow sees its running activity fail with a cancellation as the cause
    # (or, while between activities, a bare CancelledError).
    return isinstance(err, asyncio.CancelledError) or is_cancelled_exception(err)


def _failure(planned: _Planned, err: BaseException, cancelled: bool, in_guard: bool) -> str:
    step = planned.step
    if cancelled:
        return f"step {step.name!r} ({describe_call(step.action, planned.args)}) cancelled"
    why = _why(err) if isinstance(err, FailureError) else str(err)
    if in_guard and step.guard is not None and planned.guard is not None:
        guard = describe_call(step.guard.action, planned.guard)
        return f"step {step.name!r} not run: guard {guard} failed: {why}"
    return f"step {step.name!r} ({describe_call(step.action, planned.args)}) failed: {why}"


def _why(err: FailureError) -> str:
    """The application's own message, or what timed out."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ActivityTimeoutError):
        last = cause.cause.message if isinstance(cause.cause, ApplicationError) else "no answer"
        return f"timed out (last: {last})"
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)

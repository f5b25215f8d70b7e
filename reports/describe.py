"""One line per history event: what happened and the detail that matters, read from the event.

``describe`` names an activity by its type and the user-metadata summary the workflow gave it
(a runbook step reads ``hold: traffic.set og-b drain``), a signal or update by its name, a
child by its workflow id; the detail is the failure message, the result's sentence, or what
a signal carried. ``tone`` colours the line: failures, compensations, completions, the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.api.enums.v1 import RetryState, StartChildWorkflowExecutionFailedCause
from temporalio.api.history.v1 import HistoryEvent

from reports.events import event_type, failure_text, first, sentence, user_summary
from reports.model import Tone

_FAIL = ("Failed", "TimedOut", "Terminated", "Rejected")
_OK = ("Completed",)

Describe = Callable[[HistoryEvent, Any, dict[int, HistoryEvent]], tuple[str, str]]


def describe(event: HistoryEvent, attrs: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    """``(what, detail)`` of ``event``; ``index`` maps event ids of its history to events."""
    return _DESCRIBE.get(event_type(event), _generic)(event, attrs, index)


def tone(kind: str, what: str) -> Tone:
    """``fail``, ``warn`` (compensation, cancellation), ``ok`` (completion) or ``info``."""
    if kind.endswith(_FAIL):
        return "fail"
    if "Cancel" in kind or ": undo " in what:
        return "warn"
    if kind.endswith(_OK):
        return "ok"
    return "info"


def _with(text: str, summary: str) -> str:
    return f"{text}: {summary}" if summary else text


def _started(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    value = first(a.input)
    why = ""
    if isinstance(value, dict):
        why = value.get("trigger") or value.get("reason") or ""
    return _with(f"workflow {a.workflow_type.name} started", user_summary(event)), sentence(why)


def _completed(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return "workflow completed", sentence(first(a.result))


def _failed(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return "workflow failed", failure_text(a.failure)


def _terminated(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    by = f" (by {a.identity})" if a.identity else ""
    return "workflow terminated", f"{a.reason or 'no reason given'}{by}"


def _canceled(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return "workflow cancelled", sentence(first(a.details))


def _timed_out(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return "workflow timed out", RetryState.Name(a.retry_state)


def _continued(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return "workflow continued as new", f"new run {a.new_execution_run_id}"


def _activity(index: dict[int, HistoryEvent], scheduled_id: int) -> tuple[str, str]:
    scheduled = index.get(scheduled_id)
    if scheduled is None:
        return "(unknown activity)", ""
    name = scheduled.activity_task_scheduled_event_attributes.activity_type.name
    return name, user_summary(scheduled)


def _attempt(index: dict[int, HistoryEvent], started_id: int) -> int:
    started = index.get(started_id)
    return started.activity_task_started_event_attributes.attempt if started else 0


def _scheduled(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return _with(f"activity {a.activity_type.name} scheduled", user_summary(event)), ""


def _act_done(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    name, summary = _activity(index, a.scheduled_event_id)
    attempt = _attempt(index, a.started_event_id)
    note = f" (attempt {attempt})" if attempt > 1 else ""
    return _with(f"activity {name} completed", summary), sentence(first(a.result)) + note


def _act_failed(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    name, summary = _activity(index, a.scheduled_event_id)
    attempt = _attempt(index, a.started_event_id)
    state = RetryState.Name(a.retry_state).removeprefix("RETRY_STATE_").lower()
    detail = f"{failure_text(a.failure)} (attempt {attempt}; {state.replace('_', ' ')})"
    return _with(f"activity {name} failed", summary), detail


def _act_timed_out(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    name, summary = _activity(index, a.scheduled_event_id)
    return _with(f"activity {name} timed out", summary), failure_text(a.failure)


def _act_canceled(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    name, summary = _activity(index, a.scheduled_event_id)
    return _with(f"activity {name} cancelled", summary), sentence(first(a.details))


def _timer(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    started = index.get(a.started_event_id)
    return _with(f"timer {a.timer_id} fired", user_summary(started) if started else ""), ""


def _signaled(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return f"signal {a.signal_name} received", sentence(first(a.input))


def _signal_out(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    target = a.workflow_execution.workflow_id
    return f"signal {a.signal_name} sent to {target}", sentence(first(a.input))


def _child(verb: str) -> Describe:
    def describe(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
        what = f"child {a.workflow_type.name} {a.workflow_execution.workflow_id} {verb}"
        if verb == "started":
            initiated = index.get(a.initiated_event_id)
            summary = user_summary(initiated) if initiated else ""
            return _with(what, summary), f"run {a.workflow_execution.run_id}"
        if verb == "completed":
            return what, sentence(first(a.result))
        if verb == "failed":
            return what, failure_text(a.failure)
        return what, ""

    return describe


def _child_not_started(
    event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]
) -> tuple[str, str]:
    cause = StartChildWorkflowExecutionFailedCause.Name(a.cause)
    return f"child {a.workflow_type.name} {a.workflow_id} not started", cause


def _update_name(index: dict[int, HistoryEvent], accepted_id: int) -> str:
    accepted = index.get(accepted_id)
    if accepted is None:
        return "(unknown)"
    return accepted.workflow_execution_update_accepted_event_attributes.accepted_request.input.name


def _update_in(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    request = a.accepted_request.input
    return f"update {request.name} accepted", sentence(first(request.args))


def _update_out(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    name = _update_name(index, a.accepted_event_id)
    if a.outcome.HasField("failure"):
        return f"update {name} failed", failure_text(a.outcome.failure)
    return f"update {name} completed", sentence(first(a.outcome.success))


def _update_rejected(
    event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]
) -> tuple[str, str]:
    return f"update {a.rejected_request.input.name} rejected", failure_text(a.failure)


def _task_failed(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    return "workflow task failed", failure_text(a.failure)


def _generic(event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]) -> tuple[str, str]:
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in event_type(event)).strip()
    return words, ""


_DESCRIBE: dict[str, Describe] = {
    "WorkflowExecutionStarted": _started,
    "WorkflowExecutionCompleted": _completed,
    "WorkflowExecutionFailed": _failed,
    "WorkflowExecutionTerminated": _terminated,
    "WorkflowExecutionCanceled": _canceled,
    "WorkflowExecutionTimedOut": _timed_out,
    "WorkflowExecutionContinuedAsNew": _continued,
    "ActivityTaskScheduled": _scheduled,
    "ActivityTaskCompleted": _act_done,
    "ActivityTaskFailed": _act_failed,
    "ActivityTaskTimedOut": _act_timed_out,
    "ActivityTaskCanceled": _act_canceled,
    "TimerFired": _timer,
    "WorkflowExecutionSignaled": _signaled,
    "SignalExternalWorkflowExecutionInitiated": _signal_out,
    "ChildWorkflowExecutionStarted": _child("started"),
    "ChildWorkflowExecutionCompleted": _child("completed"),
    "ChildWorkflowExecutionFailed": _child("failed"),
    "ChildWorkflowExecutionCanceled": _child("cancelled"),
    "ChildWorkflowExecutionTimedOut": _child("timed out"),
    "ChildWorkflowExecutionTerminated": _child("terminated"),
    "StartChildWorkflowExecutionFailed": _child_not_started,
    "WorkflowExecutionUpdateAccepted": _update_in,
    "WorkflowExecutionUpdateCompleted": _update_out,
    "WorkflowExecutionUpdateRejected": _update_rejected,
    "WorkflowTaskFailed": _task_failed,
}

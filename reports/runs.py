"""One workflow run read from its history: input, activities, end, and drc's own results.

A ``RunView`` is what the report's sections need from a history, gathered in one pass:
the start input (the runbook, its trigger, the catalog's service), every activity with its
attempts and outcome, how the run ended, and the ``RunbookResult`` / ``RestartResult`` the
run produced, from whichever place the history keeps it (completion, failure details, or the
signal the run sent its monitor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from temporalio.api.enums.v1 import RetryState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from drc.incident import IncidentRun
from drc.repair import RestartResult, RunbookResult
from reports.events import (
    attributes,
    event_ns,
    event_type,
    failure_details,
    failure_text,
    first,
    is_benign,
    sentence,
    user_summary,
)
from reports.timeline import history_run_id

T = TypeVar("T")

_RUNBOOK = TypeAdapter(RunbookResult)
_RESTART = TypeAdapter(RestartResult)

_ENDS = {
    "WorkflowExecutionCompleted": "completed",
    "WorkflowExecutionFailed": "failed",
    "WorkflowExecutionTerminated": "terminated",
    "WorkflowExecutionCanceled": "cancelled",
    "WorkflowExecutionTimedOut": "timed out",
    "WorkflowExecutionContinuedAsNew": "continued as new",
}
_ACTIVITY_ENDS = {
    "ActivityTaskCompleted": "completed",
    "ActivityTaskFailed": "failed",
    "ActivityTaskTimedOut": "timed out",
    "ActivityTaskCanceled": "cancelled",
}


@dataclass
class Activity:
    """One activity of a run, from its scheduling to its end (if it ended)."""

    scheduled_id: int
    type: str
    summary: str
    """The user-metadata summary: ``undo fence: traffic.set og-a ready`` for a runbook step."""
    args: dict[str, Any]
    scheduled_ns: int
    status: str = "running"
    """``running`` (no end in the history), ``completed``, ``failed``, ``timed out``,
    ``cancelled``."""
    end_ns: int | None = None
    end_id: int = 0
    attempts: int = 1
    result: str = ""
    failure: str = ""
    last_failure: str = ""
    """The failure of the attempt before the last (a retry that then succeeded)."""
    polled: bool = False
    """That failure was BENIGN: "not ready yet", the retry policy used as a poller."""
    retry_state: str = ""

    @property
    def role(self) -> str:
        """``guard``, ``undo`` or ``step`` for runbook actions (from the summary's prefix)."""
        if self.summary.startswith("guard of "):
            return "guard"
        if self.summary.startswith("undo "):
            return "undo"
        return "step"

    @property
    def step(self) -> str:
        """The runbook step the activity belongs to (its summary's prefix), else its type."""
        head, sep, _ = self.summary.partition(": ")
        if not sep:
            return self.type
        return head.removeprefix("guard of ").removeprefix("undo ")

    @property
    def call(self) -> str:
        """What it called: the summary after the step name, else the activity type."""
        _, sep, tail = self.summary.partition(": ")
        return tail if sep else self.type


@dataclass
class RunView:
    """A run as the report reads it (see the module docstring)."""

    run: IncidentRun
    workflow_id: str
    run_id: str
    workflow_type: str = ""
    summary: str = ""
    input: Any = None
    started_ns: int = 0
    last_ns: int = 0
    status: str = "running"
    end_ns: int | None = None
    end_id: int = 0
    end_message: str = ""
    result: Any = None
    runbook: RunbookResult | None = None
    restart: RestartResult | None = None
    activities: list[Activity] = field(default_factory=list)

    @property
    def trigger(self) -> str:
        """Who or what asked for this run and why (runbook trigger, restart reason)."""
        if isinstance(self.input, dict):
            for key in ("trigger", "reason"):
                if isinstance(self.input.get(key), str):
                    return str(self.input[key])
        return ""

    @property
    def service(self) -> dict[str, Any] | None:
        """The catalog's service as the run got it (runbook input, or the monitor's config)."""
        if not isinstance(self.input, dict):
            return None
        for holder in (self.input, self.input.get("config")):
            if isinstance(holder, dict) and isinstance(holder.get("service"), dict):
                return dict(holder["service"])
        return None


def read_run(run: IncidentRun, history: WorkflowHistory) -> RunView:
    """Everything the report needs from one history, in one pass over its events."""
    view = RunView(run, history.workflow_id, history_run_id(history, run.run_id))
    index = {event.event_id: event for event in history.events}
    by_scheduled: dict[int, Activity] = {}
    for event in history.events:
        kind, a = event_type(event), attributes(event)
        view.last_ns = max(view.last_ns, event_ns(event))
        if kind == "WorkflowExecutionStarted":
            _start(view, event, a)
        elif kind == "ActivityTaskScheduled":
            activity = _scheduled(event, a)
            by_scheduled[event.event_id] = activity
            view.activities.append(activity)
        elif kind in _ACTIVITY_ENDS and a.scheduled_event_id in by_scheduled:
            _activity_end(by_scheduled[a.scheduled_event_id], event, a, index)
        elif kind in _ENDS:
            _end(view, event, kind, a)
        elif kind == "SignalExternalWorkflowExecutionInitiated":
            _sent(view, a)
    return view


def _start(view: RunView, event: HistoryEvent, a: Any) -> None:
    view.workflow_type = a.workflow_type.name
    view.summary = user_summary(event)
    view.input = first(a.input)
    view.started_ns = event_ns(event)


def _scheduled(event: HistoryEvent, a: Any) -> Activity:
    value = first(a.input)
    args = value.get("args") if isinstance(value, dict) else None
    return Activity(
        scheduled_id=event.event_id,
        type=a.activity_type.name,
        summary=user_summary(event),
        args=dict(args) if isinstance(args, dict) else {},
        scheduled_ns=event_ns(event),
    )


def _activity_end(
    activity: Activity, event: HistoryEvent, a: Any, index: dict[int, HistoryEvent]
) -> None:
    kind = event_type(event)
    activity.status = _ACTIVITY_ENDS[kind]
    activity.end_ns, activity.end_id = event_ns(event), event.event_id
    started = index.get(a.started_event_id)
    if started is not None:
        attrs = started.activity_task_started_event_attributes
        activity.attempts = max(attrs.attempt, 1)
        if attrs.HasField("last_failure"):
            activity.last_failure = failure_text(attrs.last_failure)
            activity.polled = is_benign(attrs.last_failure)
    if kind == "ActivityTaskCompleted":
        activity.result = sentence(first(a.result))
    elif kind in ("ActivityTaskFailed", "ActivityTaskTimedOut"):
        activity.failure = failure_text(a.failure)
        activity.retry_state = RetryState.Name(a.retry_state)


def _end(view: RunView, event: HistoryEvent, kind: str, a: Any) -> None:
    view.status = _ENDS[kind]
    view.end_ns, view.end_id = event_ns(event), event.event_id
    if kind == "WorkflowExecutionCompleted":
        view.result = first(a.result)
        view.end_message = sentence(view.result)
        _results(view, view.result)
    elif kind == "WorkflowExecutionFailed":
        view.end_message = failure_text(a.failure)
        _results(view, failure_details(a.failure))
    elif kind == "WorkflowExecutionTerminated":
        view.end_message = a.reason or "no reason given"
    elif kind == "WorkflowExecutionCanceled":
        view.end_message = sentence(first(a.details)) or "cancelled"
    elif kind == "WorkflowExecutionTimedOut":
        view.end_message = f"timed out ({RetryState.Name(a.retry_state)})"
    else:
        view.end_message = f"continued as new in run {a.new_execution_run_id}"


def _sent(view: RunView, a: Any) -> None:
    # A runbook or restart tells its monitor how it ended: the only copy of the journal of a
    # run that failed some other way, and the one a cancelled run leaves.
    if a.signal_name in ("runbook_finished", "restart_finished"):
        _results(view, first(a.input))


def _results(view: RunView, value: Any) -> None:
    if not isinstance(value, dict):
        return
    if "steps" in value and view.runbook is None:
        view.runbook = _validated(_RUNBOOK, value)
    elif "ok" in value and view.restart is None:
        view.restart = _validated(_RESTART, value)


def _validated(adapter: TypeAdapter[T], value: dict[str, Any]) -> T | None:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None

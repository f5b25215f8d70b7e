"""The incident timeline: which history events a report shows, one row each, in order.

The selection rule, relied on by tests that re-select from the raw histories:

* every event of a repair run, every event of a monitor run (``IncidentRun.kind ==
  "monitor"``, long-lived) whose time is inside the incident window, both ends included;
* except the bookkeeping in ``NOISE``: workflow tasks, activity task starts (their attempt
  count is shown on the activity's end instead), timers started or cancelled, markers,
  search-attribute and property upserts, the confirmations of signals sent, child starts
  initiated (the child's ``started`` event is shown), activity cancel requests, admitted
  updates;
* rows sorted by (time, workflow id, event id).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from temporalio.client import WorkflowHistory

from drc.incident import IncidentRun
from reports.describe import describe, tone
from reports.events import attributes, event_ns, event_type
from reports.fmt import iso_ns, ns_of
from reports.model import TimelineRow

DEFAULT_WEB_UI = "http://127.0.0.1:8233"

NOISE = frozenset(
    {
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskStarted",
        "ActivityTaskCancelRequested",
        "TimerStarted",
        "TimerCanceled",
        "MarkerRecorded",
        "UpsertWorkflowSearchAttributes",
        "WorkflowPropertiesModified",
        "ExternalWorkflowExecutionSignaled",
        "StartChildWorkflowExecutionInitiated",
        "WorkflowExecutionUpdateAdmitted",
    }
)
"""Event types never shown: bookkeeping that says nothing about the incident."""


def run_link(web_ui: str, namespace: str, workflow_id: str, run_id: str) -> str:
    """The run's history page in the Temporal Web UI."""
    wid = quote(workflow_id, safe="")
    return f"{web_ui}/namespaces/{quote(namespace, safe='')}/workflows/{wid}/{run_id}/history"


def history_run_id(history: WorkflowHistory, fallback: str | None) -> str:
    """The run the history belongs to (from its first event), else ``fallback`` or ""."""
    try:
        return history.run_id or fallback or ""
    except RuntimeError:  # no events, or the first is not the start
        return fallback or ""


def timeline_rows(
    run: IncidentRun,
    history: WorkflowHistory,
    window: tuple[float, float] | None,
    *,
    web_ui: str = DEFAULT_WEB_UI,
    namespace: str = "default",
) -> list[TimelineRow]:
    """The selected events of one run, sorted; see the module docstring for the rule.

    ``window`` (Unix seconds, both ends included) limits a monitor run only; repair runs are
    taken whole. Payloads that cannot be decoded show as ``(undecodable)``.
    """
    index = {event.event_id: event for event in history.events}
    run_id = history_run_id(history, run.run_id)
    link = run_link(web_ui, namespace, history.workflow_id, run_id)
    low, high = _bounds(run, window)
    rows: list[TimelineRow] = []
    for event in history.events:
        kind, at = event_type(event), event_ns(event)
        if kind in NOISE or not low <= at <= high:
            continue
        what, detail = describe(event, attributes(event), index)
        rows.append(
            TimelineRow(
                at_ns=at,
                time=iso_ns(at),
                workflow_id=history.workflow_id,
                run_id=run_id,
                run_short=run_id[:8],
                event_id=event.event_id,
                event_type=kind,
                what=what,
                detail=detail,
                link=link,
                tone=tone(kind, what),
            )
        )
    rows.sort(key=lambda row: (row.at_ns, row.workflow_id, row.event_id))
    return rows


def _bounds(run: IncidentRun, window: tuple[float, float] | None) -> tuple[int, int]:
    if run.kind != "monitor" or window is None:
        return (-(2**63), 2**63)
    return ns_of(window[0]), ns_of(window[1])


def merge(groups: Sequence[list[TimelineRow]]) -> list[TimelineRow]:
    """Rows of several runs as one timeline, sorted by (time, workflow id, event id)."""
    rows = [row for group in groups for row in group]
    rows.sort(key=lambda row: (row.at_ns, row.workflow_id, row.event_id))
    return rows

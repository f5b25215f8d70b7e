"""What workflows tell beyond their history: a structured log line per decision, and metrics.

Both are safe in workflow code: ``workflow.logger`` drops lines while a workflow replays, and
``workflow.metric_meter()`` records nothing then (temporalio 1.35, ``_ReplaySafeMetricMeter``),
so a replay neither repeats a line nor counts a detection twice; neither adds a command to
the history. The metrics are defined in ``drc/metrics.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from drc.metrics import DETECTIONS, REPAIR_DURATION, REPAIRS, counter, histogram
    from drc.names import SA_INCIDENT
    from drc.repair import RepairEnd


def log_decision(message: str, *args: object, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``message % args`` with ``fields`` and the run's ids as the ``drc`` extra.

    A JSON line (``drc.logs``) then carries ``drc.service``, ``drc.incident``,
    ``drc.workflow_id``, ``drc.run_id`` and whatever else the caller names.
    """
    info = workflow.info()
    extra = {"drc": {**fields, "workflow_id": info.workflow_id, "run_id": info.run_id}}
    workflow.logger.log(level, message, *args, extra=extra, stacklevel=2)


def run_incident() -> str | None:
    """The incident this run belongs to: its ``incident`` search attribute, set at its start."""
    return workflow.info().typed_search_attributes.get(SA_INCIDENT)


def count_detection(service: str, kind: str, severity: str | None) -> None:
    """One more detection of ``kind`` (``failed``, ``degraded``, ``sync-degraded``...)."""
    meter = workflow.metric_meter()
    counter(meter, DETECTIONS).add(
        1, DETECTIONS.attributes(service=service, kind=kind, severity=severity or "unknown")
    )


def count_repair_end(service: str, runbook: str, end: RepairEnd, seconds: float) -> None:
    """A repair run ended: count it by outcome and record how long it took."""
    labels = {"service": service, "runbook": runbook, "outcome": repair_outcome(end)}
    meter = workflow.metric_meter()
    counter(meter, REPAIRS).add(1, REPAIRS.attributes(**labels))
    histogram(meter, REPAIR_DURATION).record(
        max(seconds, 0.0), REPAIR_DURATION.attributes(**labels)
    )


def repair_outcome(end: RepairEnd) -> str:
    """How a repair ended, as the ``outcome`` label says it.

    ``succeeded``; ``cancelled``, ``terminated``, ``timed_out``; a runbook's own outcome
    (``compensated``, ``failed_compensation``, ``rejected``); otherwise ``failed``.
    """
    if end.succeeded:
        return "succeeded"
    if end.status in ("cancelled", "terminated", "timed_out"):
        return end.status
    if end.runbook is not None:
        return end.runbook.outcome
    return "failed"

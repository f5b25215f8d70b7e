"""Build a post-incident report from the incident record and its runs' workflow histories.

The one entry point the rest of drc calls: ``build_report``. It reads, it never starts or
changes anything, and it is deterministic: the same record and histories give the same
``Report`` (and so the same rendered bytes), whatever the clock says.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import WorkflowHistory

from drc.incident import AvailabilityChange, Incident, IncidentRun
from reports import sections
from reports.chart import chart
from reports.facts import Draft, draft
from reports.impact import impact
from reports.model import Report
from reports.repairs import milestones, missing_section, repair_section
from reports.runs import RunView, read_run
from reports.timeline import DEFAULT_WEB_UI, merge, timeline_rows

WINDOW_MARGIN_S = 5.0
"""How far before the first failed probe and after the end a monitor's events are shown."""

BADGES = ("Type", "Severity", "Status", "Forced")
ACTION_ITEM_COLUMNS = ["Action item", "Type (mitigate / prevent / detect)", "Owner", "Ticket"]


def build_report(
    incident: Incident,
    runs: Sequence[tuple[IncidentRun, WorkflowHistory | None]],
    changes: Sequence[AvailabilityChange],
    *,
    web_ui: str = DEFAULT_WEB_UI,
    namespace: str = "default",
) -> Report:
    """The report of ``incident``; a run whose history is None (retention) is listed as missing.

    ``runs`` pairs each run of the incident (its monitor and repairs) with its history;
    ``changes`` are the service's availability changes during the incident.
    """
    ordered = sorted(runs, key=lambda pair: _run_key(pair[0]))
    present = [(run, history) for run, history in ordered if history is not None]
    views = [read_run(run, history) for run, history in present]
    window = incident_window(incident, views)
    rows = merge(
        [
            timeline_rows(run, history, window, web_ui=web_ui, namespace=namespace)
            for run, history in present
        ]
    )
    gone = [run for run, history in ordered if history is None]
    effect = impact(incident, changes, views, web_ui, namespace)
    budget = sections.detection_budget_s(views)
    facts = draft(incident, views, effect, budget, web_ui, namespace)
    repairs = [repair_section(v, web_ui, namespace) for v in views if v.run.kind != "monitor"]
    repairs += [missing_section(r, web_ui, namespace) for r in gone if r.kind != "monitor"]
    repairs.sort(key=lambda r: (r.started, r.workflow_id, r.run_id))
    summary = sections.summary(incident, views, len(gone))
    events = sum(len(history.events) for _, history in present)
    return Report(
        title=f"Post-incident report: {incident.service}, {incident.type}",
        incident_id=incident.id,
        service=incident.service,
        summary=summary,
        badges=[item for item in summary if item.label in BADGES],
        forced=sections.forced(incident, views, effect.guard),
        metrics=sections.metrics(incident),
        impact=effect,
        cause=incident.cause,
        triggers=sections.triggers(views),
        detection=sections.detection(incident, views),
        repairs=repairs,
        milestones=milestones(views, web_ui, namespace),
        timeline=rows,
        chart=chart(rows),
        went_well=Draft.sorted(facts.well),
        went_wrong=Draft.sorted(facts.wrong),
        lucky=Draft.sorted(facts.lucky),
        action_item_columns=ACTION_ITEM_COLUMNS,
        missing=[f"{r.workflow_id} run {r.run_id or '(unknown)'}" for r in gone],
        sources=(
            f"incident record {incident.id} (version {incident.version}), "
            f"{len(present)} workflow histories with {events} events in all, "
            f"{len(changes)} availability changes; {len(gone)} histories missing"
        ),
    )


def incident_window(incident: Incident, views: list[RunView]) -> tuple[float, float]:
    """[started − 5 s, end + 5 s]: the monitor events a report shows.

    The end is the resolution; for an open incident, the last event of its repair runs (of the
    monitor's, when it had none), or the last time the record knows.
    """
    end = incident.resolved_at
    if end is None:
        repairs = [v.last_ns for v in views if v.run.kind != "monitor"]
        lasts = repairs or [v.last_ns for v in views]
        known = [t for t in (incident.detected_at, incident.mitigated_at) if t is not None]
        end = max([t / 1e9 for t in lasts] + known)
    return incident.started_at - WINDOW_MARGIN_S, end + WINDOW_MARGIN_S


def _run_key(run: IncidentRun) -> tuple[float, str, str]:
    return run.started_at, run.workflow_id, run.run_id or ""

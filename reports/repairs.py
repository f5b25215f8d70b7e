"""The resolution section: each repair run's steps, compensations and end, and its milestones.

A runbook's steps come from its ``RunbookResult`` journal when the history holds one, with
attempts and guard answers from the activity events; a run that left no journal (terminated,
still running) is described from its activity events alone. Compensations are listed in the
order their activities ran. A restart lists its activities and its ``RestartResult``.
"""

from __future__ import annotations

from drc.incident import IncidentRun
from drc.repair import StepRecord
from reports.fmt import duration, duration_ns, iso_ns, iso_s, seconds_of
from reports.model import CompensationRow, Fact, Item, Repair, StepRow, Tone
from reports.runs import Activity, RunView
from reports.timeline import run_link

_STEP_STATUS = {
    "completed": "succeeded",
    "failed": "failed",
    "timed out": "failed",
    "cancelled": "cancelled",
}
_MILESTONES = {"promote": "promoted", "switch": "traffic switched", "verify": "verified"}


def repair_section(view: RunView, web_ui: str, namespace: str) -> Repair:
    """The resolution entry of one repair run whose history is at hand."""
    runbook, restart = view.runbook, view.restart
    outcome: str = runbook.outcome if runbook else ""
    if restart is not None:
        outcome = "restarted" if restart.ok else "restart failed"
    reason = (runbook.reason if runbook else "") or (restart.reason if restart else "")
    return Repair(
        workflow_id=view.workflow_id,
        run_id=view.run_id,
        kind=view.run.kind,
        link=run_link(web_ui, namespace, view.workflow_id, view.run_id),
        started=iso_ns(view.started_ns),
        ended=iso_ns(view.end_ns) if view.end_ns is not None else "(not ended)",
        status=view.status,
        outcome=outcome,
        trigger=view.trigger,
        reason=reason or view.end_message,
        steps=_steps(view),
        compensations=_compensations(view),
        details=_details(view),
        tone=_tone(view, outcome),
    )


def missing_section(run: IncidentRun, web_ui: str, namespace: str) -> Repair:
    """The resolution entry of a repair run whose history is gone: the record's facts only."""
    return Repair(
        workflow_id=run.workflow_id,
        run_id=run.run_id or "(unknown)",
        kind=run.kind,
        link=run_link(web_ui, namespace, run.workflow_id, run.run_id) if run.run_id else "",
        started=iso_s(run.started_at),
        ended="(unknown)",
        status="history missing",
        outcome="",
        trigger="",
        reason="the history of this run is gone (retention); the incident record lists it",
        steps=[],
        compensations=[],
        details=[],
        tone="warn",
    )


def milestones(views: list[RunView], web_ui: str, namespace: str) -> list[Fact]:
    """Standby promoted, traffic switched, verified, re-protected, restarted: when and how."""
    found: list[tuple[int, Fact]] = []
    for view in views:
        link = run_link(web_ui, namespace, view.workflow_id, view.run_id)
        for act in view.activities:
            label = _MILESTONES.get(act.step)
            if label and act.role == "step" and act.status == "completed" and act.end_ns:
                text = f"{iso_ns(act.end_ns)} {label} ({view.workflow_id}): {act.result}"
                found.append((act.end_ns, Fact(text, f"{view.workflow_id} #{act.end_id}", link)))
        done = view.end_ns or view.last_ns
        if view.run.kind.startswith("reprotect") and _succeeded(view):
            text = f"{iso_ns(done)} re-protected ({view.workflow_id}): {view.end_message}"
            found.append((done, Fact(text, f"{view.workflow_id} #{view.end_id}", link)))
        if view.restart is not None and view.restart.ok:
            text = f"{iso_ns(done)} restarted ({view.workflow_id}): {view.restart.reason}"
            found.append((done, Fact(text, f"{view.workflow_id} #{view.end_id}", link)))
    found.sort(key=lambda pair: (pair[0], pair[1].source))
    return [fact for _, fact in found]


def _succeeded(view: RunView) -> bool:
    if view.status != "completed":
        return False
    if view.runbook is not None:
        return view.runbook.outcome == "succeeded"
    return view.restart is None or view.restart.ok


def _tone(view: RunView, outcome: str) -> Tone:
    if _succeeded(view):
        return "ok"
    if view.status in ("running", "cancelled", "continued as new"):
        return "warn"
    return "fail"


def _steps(view: RunView) -> list[StepRow]:
    if view.runbook is not None:
        return [_journal_row(record, view.activities) for record in view.runbook.steps]
    if view.workflow_type == "Runbook":
        names = list(dict.fromkeys(a.step for a in view.activities if a.role != "undo"))
        return [_activity_row(name, view) for name in names]
    return [_plain_row(act) for act in view.activities]


def _journal_row(record: StepRecord, activities: list[Activity]) -> StepRow:
    main = _last(activities, record.name, "step")
    guard = _last(activities, record.name, "guard")
    summary = record.summary
    if guard is not None and guard.status == "completed" and record.status != "skipped":
        summary = f"guard {guard.call}: {guard.result}; {summary}"
    took = ""
    if record.started_at is not None and record.finished_at is not None:
        took = duration(seconds_of(record.finished_at) - seconds_of(record.started_at))
    return StepRow(
        name=record.name,
        action=record.action,
        status=record.status,
        started=iso_s(record.started_at),
        finished=iso_s(record.finished_at),
        duration=took,
        attempts=_attempts(main, guard),
        summary=summary,
        tone=_step_tone(record.status),
    )


def _activity_row(name: str, view: RunView) -> StepRow:
    main = _last(view.activities, name, "step")
    guard = _last(view.activities, name, "guard")
    act = main or guard
    assert act is not None  # the name came from an activity
    status = _STEP_STATUS.get(act.status, "interrupted" if view.end_ns else "running")
    if main is None and act.status == "completed":
        status = "interrupted"  # the guard passed, the action never ran
    return StepRow(
        name=name,
        action=act.call,
        status=status,
        started=iso_ns((guard or act).scheduled_ns),
        finished=iso_ns(act.end_ns) if act.end_ns else "",
        duration=duration_ns((guard or act).scheduled_ns, act.end_ns) if act.end_ns else "",
        attempts=_attempts(main, guard),
        summary=act.result or act.failure,
        tone=_step_tone(status),
    )


def _plain_row(act: Activity) -> StepRow:
    status = _STEP_STATUS.get(act.status, "running")
    return StepRow(
        name=act.type,
        action=act.call,
        status=status,
        started=iso_ns(act.scheduled_ns),
        finished=iso_ns(act.end_ns) if act.end_ns else "",
        duration=duration_ns(act.scheduled_ns, act.end_ns) if act.end_ns else "",
        attempts=str(act.attempts),
        summary=act.result or act.failure,
        tone=_step_tone(status),
    )


def _compensations(view: RunView) -> list[CompensationRow]:
    undos = [a for a in view.activities if a.role == "undo"]
    if undos:
        return [
            CompensationRow(
                order=i,
                step=act.step,
                call=act.call,
                status=_STEP_STATUS.get(act.status, "running"),
                time=iso_ns(act.end_ns or act.scheduled_ns),
                result=act.result or act.failure,
                tone="warn" if act.status == "completed" else "fail",
            )
            for i, act in enumerate(undos, start=1)
        ]
    journal = view.runbook.steps if view.runbook else []
    undone = [r for r in reversed(journal) if r.status in ("compensated", "compensation_failed")]
    return [
        CompensationRow(
            order=i,
            step=r.name,
            call="",
            status="succeeded" if r.status == "compensated" else "failed",
            time="",
            result=r.compensation,
            tone="warn" if r.status == "compensated" else "fail",
        )
        for i, r in enumerate(undone, start=1)
    ]


def _details(view: RunView) -> list[Item]:
    items: list[Item] = [Item("workflow", f"{view.workflow_type} ({view.status})")]
    if isinstance(view.input, dict) and isinstance(view.input.get("params"), dict):
        params = view.input["params"]
        text = ", ".join(f"{k}={params[k]}" for k in sorted(params))
        items.append(Item("params", text))
    if view.runbook is not None:
        items.append(Item("runbook", f"{view.runbook.runbook}: {view.runbook.outcome}"))
    restart = view.restart
    if restart is not None:
        items += [
            Item("replica", restart.replica),
            Item("restart", "ok" if restart.ok else "failed"),
            Item("restart began", iso_s(restart.started_at)),
            Item("restart ended", iso_s(restart.finished_at)),
            Item(
                "restart took",
                duration(seconds_of(restart.finished_at) - seconds_of(restart.started_at)),
            ),
        ]
    return items


def _last(activities: list[Activity], step: str, role: str) -> Activity | None:
    found = [a for a in activities if a.step == step and a.role == role]
    return found[-1] if found else None


def _attempts(main: Activity | None, guard: Activity | None) -> str:
    if main is None and guard is None:
        return ""
    parts = [f"guard {guard.attempts}"] if guard is not None else []
    if main is not None:
        parts.append(str(main.attempts) if guard is None else f"action {main.attempts}")
    return ", ".join(parts)


def _step_tone(status: str) -> Tone:
    if status == "succeeded":
        return "ok"
    if status in ("failed", "compensation_failed"):
        return "fail"
    if status in ("compensated", "cancelled", "interrupted"):
        return "warn"
    return "info"

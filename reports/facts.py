"""Went well, went wrong, got lucky: drafted from machine facts, each with its source event.

These are drafts for the people who write the postmortem, not conclusions: every fact names
the history event (or the incident record) it was read from, so it can be checked in one
click. Rules, by what the histories show:

* well: a runbook or restart that succeeded; every compensation of a failed runbook ran; the
  old primary fenced; a terminated repair finished by a later run; the zero-data-loss guard
  held; detection within the probe budget;
* wrong: time down (from the availability changes); a repair terminated, timed out or
  cancelled; a runbook rolled back, rejected, or with a failed compensation; a restart that
  failed; an activity whose retries ran out or that failed without retry; a guard refusal;
  the monitor freezing, refusing or giving up (incident notes); detection slower than the
  probe budget;
* lucky: a forced failover (no guard stood between it and data loss); an activity that
  succeeded only after failed attempts (not counting BENIGN "not ready yet" polling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drc.incident import Incident
from reports.fmt import duration, duration_ns, ns_of
from reports.model import Fact, Guard, Impact
from reports.runs import RunView
from reports.timeline import run_link

_FENCING = ("fence", "fence-writes", "stop-old")
_NOTE_WRONG = {
    "frozen": "automatic action frozen",
    "no-failover": "failover refused",
    "failover-refused": "failover refused",
    "crash-looping": "crash loop",
    "restart-failed": "restart failed",
    "watch-failed": "the watch failed",
    "no-drain": "drain refused",
}


@dataclass
class Draft:
    """The three lists, filled rule by rule; ``sorted`` orders each by time, then source."""

    well: list[tuple[int, Fact]] = field(default_factory=list)
    wrong: list[tuple[int, Fact]] = field(default_factory=list)
    lucky: list[tuple[int, Fact]] = field(default_factory=list)

    @staticmethod
    def sorted(found: list[tuple[int, Fact]]) -> list[Fact]:
        """The facts by time of their evidence, then source and text."""
        return [f for _, f in sorted(found, key=lambda p: (p[0], p[1].source, p[1].text))]


def draft(
    incident: Incident,
    views: list[RunView],
    effect: Impact,
    budget_s: float | None,
    web_ui: str,
    namespace: str,
) -> Draft:
    """Every fact the rules in the module docstring find."""
    out = Draft()
    repairs = [v for v in views if v.run.kind != "monitor"]
    for view in repairs:
        link = run_link(web_ui, namespace, view.workflow_id, view.run_id)
        _run_facts(out, view, repairs, link)
        _activity_facts(out, view, link)
    _record_facts(out, incident, effect.guard, budget_s)
    if effect.down_formula.startswith("Σ"):
        text = f"{incident.service} was down for {effect.down_total}"
        out.wrong.append((ns_of(incident.started_at), Fact(text, "availability changes", "")))
    return out


def _fact(view: RunView, event_id: int, text: str, link: str) -> Fact:
    return Fact(f"{view.workflow_id}: {text}", f"{view.workflow_id} #{event_id}", link)


def _run_facts(out: Draft, view: RunView, repairs: list[RunView], link: str) -> None:
    at, end = view.end_ns or view.last_ns, view.end_id
    runbook, restart = view.runbook, view.restart
    if view.status in ("terminated", "timed out", "cancelled"):
        out.wrong.append((at, _fact(view, end, f"{view.status}: {view.end_message}", link)))
        later = [
            v
            for v in repairs
            if v.workflow_id == view.workflow_id
            and v.started_ns > view.started_ns
            and v.runbook is not None
            and v.runbook.outcome == "succeeded"
        ]
        if later:
            text = f"the {view.status} run was finished by run {later[0].run_id}"
            out.well.append((at, _fact(view, end, text, link)))
    if runbook is not None:
        took = duration_ns(view.started_ns, at)
        if runbook.outcome == "succeeded":
            out.well.append((at, _fact(view, end, f"{runbook.reason} in {took}", link)))
        elif runbook.outcome == "compensated":
            out.wrong.append((at, _fact(view, end, f"rolled back: {runbook.reason}", link)))
            undone = [s.name for s in reversed(runbook.steps) if s.status == "compensated"]
            text = "every compensation ran, in reverse: " + (", ".join(undone) or "none needed")
            out.well.append((at, _fact(view, end, text, link)))
        else:
            out.wrong.append((at, _fact(view, end, f"{runbook.outcome}: {runbook.reason}", link)))
    if restart is not None:
        bucket = out.well if restart.ok else out.wrong
        bucket.append((at, _fact(view, end, restart.reason, link)))
    fenced = [
        a
        for a in view.activities
        if a.step in _FENCING and a.role == "step" and a.status == "completed"
    ]
    if fenced:
        said = "; ".join(f"{a.step}: {a.result}" for a in fenced)
        last = fenced[-1]
        text = f"the old primary was fenced: {said}"
        out.well.append((last.end_ns or at, _fact(view, last.end_id, text, link)))


def _activity_facts(out: Draft, view: RunView, link: str) -> None:
    for act in view.activities:
        what = act.summary or act.type
        at = act.end_ns or act.scheduled_ns
        if act.status in ("failed", "timed out"):
            if act.role == "guard" or act.type == "action_state_caught_up":
                text = f"guard refused ({what}): {act.failure}"
            elif act.retry_state == "RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED":
                text = f"retries exhausted: {what} failed {act.attempts} times; last: {act.failure}"
            elif act.retry_state == "RETRY_STATE_NON_RETRYABLE_FAILURE":
                text = f"{what} failed without retry (non-retryable): {act.failure}"
            else:
                text = f"{what} {act.status} after {act.attempts} attempt(s): {act.failure}"
            out.wrong.append((at, _fact(view, act.end_id, text, link)))
        elif act.status == "completed" and act.attempts > 1 and not act.polled:
            before = f" (before: {act.last_failure})" if act.last_failure else ""
            text = f"{what} succeeded only on attempt {act.attempts}{before}"
            out.lucky.append((at, _fact(view, act.end_id, text, link)))


def _record_facts(out: Draft, incident: Incident, guard: Guard, budget_s: float | None) -> None:
    for note in incident.notes:
        label = _NOTE_WRONG.get(note.action)
        if label is not None:
            fact = Fact(f"{label}: {note.reason}", "incident record", "")
            out.wrong.append((ns_of(note.at), fact))
    started = ns_of(incident.started_at)
    # A refusal is already a fact of its activity (guard refused); a pass is only here.
    if guard.status == "held":
        text = f"the zero-data-loss guard held: {guard.sentence}"
        out.well.append((started, Fact(text, "guard", guard.link)))
    elif guard.status == "skipped (forced)":
        who = incident.forced_by or "an operator"
        text = (
            f"the failover was forced by {who}: the zero-data-loss guard was skipped "
            f"({guard.sentence}); nothing proves that no acknowledged write was lost"
        )
        out.lucky.append((started, Fact(text, "guard", guard.link)))
    elif incident.forced_by:
        text = f"a failover was forced by {incident.forced_by}: replication guards skipped"
        out.lucky.append((started, Fact(text, "incident record", "")))
    if budget_s is not None:
        ttd = incident.detected_at - incident.started_at
        within = ttd <= budget_s
        text = (
            f"detected {duration(ttd)} after the first failed probe, "
            f"{'within' if within else 'beyond'} the detection budget of {duration(budget_s)}"
        )
        (out.well if within else out.wrong).append(
            (ns_of(incident.detected_at), Fact(text, "incident record", ""))
        )

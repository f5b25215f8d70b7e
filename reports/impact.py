"""The impact section: time down and degraded, and whether the zero-data-loss guard held.

Downtime is read from the availability changes the monitor recorded, never estimated: each
change opens an interval in its state that the next change (or the incident's resolution)
closes, clipped to the incident (from its first failed probe to its resolution).

The guard is the ``caught-up`` step of the ``failover-state`` runbook
(``runbooks/failover-state.yaml``): its ``state.caught_up`` activity checks, after the old
primary is fenced, that the replica has every byte the primary had.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from drc.incident import AvailabilityChange, Incident
from reports.fmt import duration, iso_ns, iso_s
from reports.model import Guard, Impact, Interval
from reports.runs import Activity, RunView
from reports.timeline import run_link

GUARD_ACTIVITY = "action_state_caught_up"
GUARD_STEP = "caught-up"
STATE_RUNBOOK = "failover-state"


def impact(
    incident: Incident,
    changes: Sequence[AvailabilityChange],
    views: list[RunView],
    web_ui: str,
    namespace: str,
) -> Impact:
    """Down and degraded time with their formulas, every interval, and the guard's verdict."""
    intervals, spans = _intervals(incident, changes)
    down_total, down_formula = _total("down", spans)
    degraded_total, degraded_formula = _total("degraded", spans)
    return Impact(
        down_total=down_total,
        down_formula=down_formula,
        degraded_total=degraded_total,
        degraded_formula=degraded_formula,
        intervals=intervals,
        guard=guard(views, web_ui, namespace),
    )


def _intervals(
    incident: Incident, changes: Sequence[AvailabilityChange]
) -> tuple[list[Interval], list[tuple[str, float | None]]]:
    mine = sorted(
        (c for c in changes if c.service == incident.service),
        key=lambda c: (c.at, c.state, c.reason),
    )
    intervals: list[Interval] = []
    spans: list[tuple[str, float | None]] = []
    # Clipped to the incident: the store also passes the state the service was in before it.
    low, high = incident.started_at, incident.resolved_at
    for i, change in enumerate(mine):
        last = i + 1 == len(mine)
        end = high if last else mine[i + 1].at
        if end is not None and high is not None:
            end = min(end, high)
        start = max(change.at, low)
        if end is not None and (end < start or (end == start and not last)):
            continue
        length = None if end is None else end - start
        spans.append((change.state, length))
        intervals.append(
            Interval(
                state=change.state,
                start=iso_s(start),
                end=iso_s(end, "(not ended)"),
                duration="(open)" if length is None else duration(length),
                reason=change.reason,
            )
        )
    return intervals, spans


def _total(state: str, spans: list[tuple[str, float | None]]) -> tuple[str, str]:
    closed = [length for s, length in spans if s == state and length is not None]
    still_open = sum(1 for s, length in spans if s == state and length is None)
    if not closed and not still_open:
        return duration(0), f"no interval in state {state} was recorded"
    total = duration(sum(closed))
    formula = (
        f"Σ (next change − change to {state}) over {len(closed)} interval(s) of the "
        f"availability changes, within [started, resolved] = {total}"
    )
    if still_open:
        formula += f"; plus {still_open} interval(s) still open at the end of the record"
        total += " (and still open)"
    return total, formula


def guard(views: list[RunView], web_ui: str, namespace: str) -> Guard:
    """The zero-data-loss guard's verdict in the latest state failover that got that far."""
    state_runs = [v for v in views if _is_state_failover(v)]
    for view in reversed(state_runs):
        link = run_link(web_ui, namespace, view.workflow_id, view.run_id)
        checks = [a for a in view.activities if a.type == GUARD_ACTIVITY]
        if checks:
            return _verdict(checks[-1], link)
        record = _journal_step(view)
        if record is not None and record[0] != "skipped":
            held = record[0] in ("succeeded", "compensated")
            return Guard("held" if held else "refused", record[1], "(from the journal)", link)
    if state_runs:
        link = run_link(web_ui, namespace, state_runs[-1].workflow_id, state_runs[-1].run_id)
        sentence = "the state failover ended before its caught-up guard ran: nothing was promoted"
        return Guard("not reached", sentence, "", link)
    if any(_stateful(v) for v in views):
        return Guard("did not apply", "no failover of the replicated state ran", "")
    if not views:
        return Guard("unknown", "no history of this incident is left to tell", "")
    return Guard("did not apply", "the service keeps no replicated state", "")


def _verdict(check: Activity, link: str) -> Guard:
    checked = _checked(check)
    if check.status == "completed":
        forced = _number(check.args.get("max_lag_ms")) < 0 or "forced" in check.result
        status = "skipped (forced)" if forced else "held"
        return Guard(status, check.result, checked, link)
    if check.status == "running":
        return Guard("not answered", "the guard had not answered when the run ended", checked, link)
    return Guard("refused", check.failure, checked, link)


def _checked(check: Activity) -> str:
    args = check.args
    parts = [f"{args.get('replica', '?')} against {args.get('from_replica', '?')}"]
    if "max_lag_ms" in args:
        parts.append(f"max_lag_ms {args['max_lag_ms']}")
    seen = _number(args.get("primary_last_seen"))
    if 0 < seen < 1e11:  # Unix seconds; anything else is not a time to print
        parts.append(f"primary last seen {iso_s(seen)}")
    if "min_offset" in args:
        parts.append(f"min_offset {args['min_offset']}")
    if check.end_ns is not None:
        parts.append(f"answered {iso_ns(check.end_ns)}")
    return "; ".join(parts)


def _journal_step(view: RunView) -> tuple[str, str] | None:
    if view.runbook is None:
        return None
    for record in view.runbook.steps:
        if record.name == GUARD_STEP:
            return record.status, record.summary
    return None


def _is_state_failover(view: RunView) -> bool:
    name = view.runbook.runbook if view.runbook else ""
    return STATE_RUNBOOK in (view.run.kind, name) or any(
        a.type == GUARD_ACTIVITY for a in view.activities
    )


def _stateful(view: RunView) -> bool:
    service = view.service or {}
    replicas = service.get("replicas")
    if not isinstance(replicas, list):
        return False
    return any(isinstance(r, dict) and str(r.get("url", "")).startswith("redis") for r in replicas)


def _number(value: object) -> float:
    try:
        number = float(str(value))
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0

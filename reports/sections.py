"""The record-driven sections: summary, forced failover, metrics, detection, triggers.

Everything here comes from the incident record, with the catalog's service and the runbook
triggers taken from the runs' start inputs (the history records exactly what each run got).
"""

from __future__ import annotations

import json
import re
from typing import Any

from drc.incident import Incident
from reports.fmt import duration, iso_s
from reports.model import Detection, Guard, Item, Metric, Note
from reports.runs import RunView

_FORCED_BY = re.compile(r"FORCED by ([^:;]+)")
_PROBE_KEYS = ("interval_ms", "timeout_ms", "failure_threshold", "recovery_threshold")
_SETTINGS = (
    ("probe", (*_PROBE_KEYS, "health_every", "startup_grace_s")),
    ("thresholds", ("flap_window_s", "flap_max_transitions", "flap_freeze_s", "sync_lag_ms")),
    ("restart", ("crash_loop_max", "crash_loop_window_s")),
    ("failover", ("max_lag_on_failover_ms",)),
)


def forced_trigger(views: list[RunView]) -> RunView | None:
    """The last repair whose trigger says it was FORCED by an operator."""
    forced = [v for v in views if "FORCED" in v.trigger]
    return forced[-1] if forced else None


def summary(incident: Incident, views: list[RunView], missing: int) -> list[Item]:
    """Service, type, severity, status, outcome, forced or not, the runs behind the report."""
    forced = forced_trigger(views)
    who = incident.forced_by or _forced_by(forced)
    return [
        Item("Service", incident.service),
        Item("Incident", incident.id),
        Item("Type", incident.type),
        Item("Severity", incident.severity),
        Item("Status", incident.status),
        Item("Outcome", incident.outcome or "(none recorded)"),
        Item("Replica", incident.replica or "(the service)"),
        Item("Forced", f"yes, by {who}" if who or forced else "no"),
        Item("Started", f"{iso_s(incident.started_at)} (first failed probe)"),
        Item("Runs", f"{len(incident.runs) or len(views) + missing} ({missing} histories missing)"),
    ]


def forced(incident: Incident, views: list[RunView], guard: Guard) -> list[Item]:
    """Who forced the failover, the trigger that says so, and why; empty when none was."""
    run = forced_trigger(views)
    if run is None and not incident.forced_by:
        return []
    items = [Item("Forced by", incident.forced_by or _forced_by(run) or "(not recorded)")]
    if run is not None:
        why = run.trigger.split("; FORCED", 1)[0]
        items += [
            Item("Run", f"{run.workflow_id} run {run.run_id}"),
            Item("Trigger", run.trigger),
            Item("Why", why),
        ]
    else:
        items.append(Item("Trigger", "(the forced run's history is missing)"))
    items.append(Item("Guard", f"{guard.status}: {guard.sentence}"))
    return items


def metrics(incident: Incident) -> list[Metric]:
    """TTD, TTM, TTR: each with its formula and the record times it is anchored to."""
    started = f"started: first failed probe {iso_s(incident.started_at)}"
    return [
        _metric("TTD", "detected", incident.started_at, incident.detected_at, started),
        _metric("TTM", "mitigated", incident.started_at, incident.mitigated_at, started),
        _metric("TTR", "resolved", incident.started_at, incident.resolved_at, started),
    ]


def _metric(name: str, end: str, start: float, at: float | None, anchor: str) -> Metric:
    formula = f"{end} − started"
    if at is None:
        return Metric(name, formula, f"not {end} yet", f"{anchor}; {end}: not recorded")
    return Metric(name, formula, duration(at - start), f"{anchor}; {end}: {iso_s(at)}")


def service_config(views: list[RunView]) -> dict[str, Any] | None:
    """The catalog's service as the runs got it: a repair's input first, else the monitor's."""
    ordered = [v for v in views if v.run.kind != "monitor"] + [
        v for v in views if v.run.kind == "monitor"
    ]
    for view in ordered:
        if view.service is not None:
            return view.service
    return None


def detection(incident: Incident, views: list[RunView]) -> Detection:
    """Which probe, which rule and thresholds, and the monitor's decisions (incident notes)."""
    notes = [
        Note(iso_s(n.at), n.action, n.replica or "", n.reason)
        for n in sorted(incident.notes, key=lambda n: (n.at, n.action, n.replica or "", n.reason))
    ]
    service = service_config(views)
    probe = _probe_settings(service)
    if service is None or probe is None:
        unknown = "unknown: no history left carries the service's catalog entry"
        return Detection(unknown, unknown, [], notes)
    return Detection(_probe(service, probe, incident.replica), _rule(probe), _items(service), notes)


def _probe_settings(service: dict[str, Any] | None) -> dict[str, float] | None:
    """The catalog's probe numbers, or None when absent or not numbers (never trusted blind)."""
    probe = service.get("probe") if service else None
    if not isinstance(probe, dict):
        return None
    values = {k: probe.get(k) for k in _PROBE_KEYS}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()):
        return None
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}


def _probe(service: dict[str, Any], probe: dict[str, float], replica: str | None) -> str:
    every = f"every {probe['interval_ms']:g} ms with a {probe['timeout_ms']:g} ms timeout"
    replicas = service.get("replicas")
    found = [
        r
        for r in (replicas if isinstance(replicas, list) else [])
        if isinstance(r, dict) and (replica is None or r.get("name") == replica)
    ]
    if not found:
        return f"heartbeat probes of every replica of {service.get('name')}, {every}"
    target = found[0]
    url = str(target.get("url", ""))
    if url.startswith("http"):
        url = url.rstrip("/") + str(target.get("heartbeat_path", ""))
    return f"heartbeat probe of {target.get('name')} at {url}, {every}"


def _rule(probe: dict[str, float]) -> str:
    budget = probe["failure_threshold"] * probe["interval_ms"] + probe["timeout_ms"]
    return (
        f"a replica is judged failed after failure_threshold = {probe['failure_threshold']:g} "
        f"consecutive failed probes and healthy again after recovery_threshold = "
        f"{probe['recovery_threshold']:g} good ones; detection budget = failure_threshold × "
        f"interval_ms + timeout_ms = {budget:g} ms"
    )


def _items(service: dict[str, Any]) -> list[Item]:
    items: list[Item] = []
    for group, keys in _SETTINGS:
        values = service.get(group)
        if not isinstance(values, dict):
            continue
        items += [Item(f"{group}.{k}", json.dumps(values[k])) for k in keys if k in values]
    return items


def detection_budget_s(views: list[RunView]) -> float | None:
    """failure_threshold × interval_ms + timeout_ms, in seconds, when the catalog is known."""
    probe = _probe_settings(service_config(views))
    if probe is None:
        return None
    return (probe["failure_threshold"] * probe["interval_ms"] + probe["timeout_ms"]) / 1000


def triggers(views: list[RunView]) -> list[Item]:
    """Each repair run's trigger, as its start input recorded it."""
    return [
        Item(f"{v.workflow_id} run {v.run_id}", v.trigger or "(no trigger recorded)")
        for v in views
        if v.run.kind != "monitor"
    ]


def _forced_by(view: RunView | None) -> str:
    if view is None:
        return ""
    match = _FORCED_BY.search(view.trigger)
    return match.group(1).strip() if match else ""

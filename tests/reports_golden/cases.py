"""The incidents the report tests and the golden files are made from.

Histories are the real ones recorded by ``tests.replay.record`` (set ``grouped-watch``); the
incident records are filled by hand from those histories' times, the way the monitor fills
them. Two cases rewrite payloads of a real history: a FORCED state failover (none was
recorded) and hostile names, to prove they render as text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from drc.incident import AvailabilityChange, Incident, IncidentNote, IncidentRun

HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories"
SET = "grouped-watch"
HOSTILE = "<script>alert(1)</script>"

GATEWAY_MONITOR = "monitor_order-gateway-211559da-f215-49bd-87f5-a37c68ff14a2"
GATEWAY_FAILOVER = "failover_order-gateway-01a21735-d569-7e66-ab82-92f753dab6d0"
GATEWAY_REPROTECT = "reprotect_order-gateway-01a21735-d61b-7df5-9ad4-8df3fa734e45"
COMPENSATED_FAILOVER = "failover_order-gateway-01a21735-e251-71ab-a7d0-efc2114a38de"
GATEWAY_RESTART = "restart_order-gateway_og-a-01a21735-ea51-772a-81ed-ed4ca9caf683"
STATE_MONITOR = "monitor_order-state-5f568042-f8f7-4da8-bee9-b066d13d9572"
STATE_FAILOVER = "failover-state_order-state-01a21735-ef90-7a37-afea-f339a7c168dd"
STATE_REPROTECT = "reprotect-state_order-state-01a21735-f01e-74f7-98df-04bae8d11716"

DEAD = "missed a heartbeat (last error: connection refused) and process control reports it "
DEAD += "EXITED, exit status -1: dead, not a blip"


@dataclass
class Case:
    """One report's inputs."""

    incident: Incident
    runs: list[tuple[IncidentRun, WorkflowHistory | None]]
    changes: list[AvailabilityChange]


def record(stem: str, set_name: str = SET) -> dict[str, Any]:
    """A recorded history file: ``{"workflow_id": ..., "history": {...}}``."""
    data: dict[str, Any] = json.loads((HISTORIES / set_name / f"{stem}.json").read_text())
    return data


def history(stem: str, rewrite: Callable[[str], str] | None = None) -> WorkflowHistory:
    """A recorded history, its payloads' JSON text passed through ``rewrite`` first."""
    data = record(stem)
    if rewrite is not None:
        _rewrite_payloads(data["history"], rewrite)
    return WorkflowHistory.from_json(data["workflow_id"], data["history"])


def run_of(stem: str, kind: str, started_at: float) -> IncidentRun:
    """The IncidentRun of a recorded history (workflow id and run id from the file)."""
    data = record(stem)
    start = data["history"]["events"][0]["workflowExecutionStartedEventAttributes"]
    return IncidentRun(data["workflow_id"], start["originalExecutionRunId"], kind, started_at)


def _rewrite_payloads(node: Any, rewrite: Callable[[str], str]) -> None:
    if isinstance(node, list):
        for item in node:
            _rewrite_payloads(item, rewrite)
    elif isinstance(node, dict):
        if "data" in node and "metadata" in node and isinstance(node["data"], str):
            text = base64.b64decode(node["data"]).decode()
            value = json.loads(text)
            text = rewrite(json.dumps(value, ensure_ascii=False))
            node["data"] = base64.b64encode(text.encode()).decode()
            return
        for value in node.values():
            _rewrite_payloads(value, rewrite)


def gateway_failover() -> Case:
    """og-a (the primary) killed: failover to og-b, then og-a re-protected as the standby."""
    started, detected = 1795685733.725, 1795685733.727
    trigger = f"failing over order-gateway from og-a to og-b: og-a failed: og-a {DEAD}"
    incident = Incident(
        id="order-gateway/og-a/1795685733",
        service="order-gateway",
        type="service_down",
        severity="critical",
        cause=f"og-a failed: og-a {DEAD}",
        started_at=started,
        detected_at=detected,
        replica="og-a",
        status="resolved",
        outcome="failed over to og-b; og-a re-protected as its standby",
        mitigated_at=1795685733.913,
        resolved_at=1795685734.569,
        notes=[
            IncidentNote(1795685733.725, "transition", "og-a", f"og-a healthy → failed: {DEAD}"),
            IncidentNote(1795685733.736, "failover", "og-a", trigger),
            IncidentNote(1795685733.912, "reprotect", "og-a", "re-protecting order-gateway"),
            IncidentNote(1795685734.569, "reprotect-done", "og-a", "og-a is og-b's standby"),
        ],
        version=4,
    )
    runs: list[tuple[IncidentRun, WorkflowHistory | None]] = [
        (run_of(GATEWAY_MONITOR, "monitor", 1795685730.195), history(GATEWAY_MONITOR)),
        (run_of(GATEWAY_FAILOVER, "failover", 1795685733.738), history(GATEWAY_FAILOVER)),
        (run_of(GATEWAY_REPROTECT, "reprotect", 1795685733.916), history(GATEWAY_REPROTECT)),
    ]
    incident.runs = [run for run, _ in runs]
    changes = [
        AvailabilityChange("order-gateway", started, "down", "og-a, the primary, failed"),
        AvailabilityChange("order-gateway", 1795685733.873, "degraded", "og-b serves alone"),
        AvailabilityChange("order-gateway", 1795685734.569, "up", "og-a is og-b's standby"),
    ]
    return Case(incident, runs, changes)


def compensated_failover() -> Case:
    """og-a killed while og-b refuses promotion: the failover rolls back, og-a is restarted."""
    started, detected = 1795685737.0227833, 1795685737.024
    incident = Incident(
        id="order-gateway/og-a/1795685737",
        service="order-gateway",
        type="service_down",
        severity="critical",
        cause=f"og-a failed: og-a {DEAD}",
        started_at=started,
        detected_at=detected,
        replica="og-a",
        status="resolved",
        outcome="failover rolled back (og-b refused promotion); og-a restarted in place",
        mitigated_at=1795685740.174,
        resolved_at=1795685740.191,
        notes=[
            IncidentNote(started, "transition", "og-a", f"og-a healthy → failed: {DEAD}"),
            IncidentNote(1795685737.034, "failover", "og-a", "failing over order-gateway"),
            IncidentNote(
                1795685739.071, "repair-failed", "og-a", "failover/order-gateway compensated"
            ),
            IncidentNote(1795685739.073, "restart", "og-a", "og-a failed: connection refused"),
            IncidentNote(1795685740.191, "restarted", "og-a", "restarted og-a"),
        ],
        version=6,
    )
    runs: list[tuple[IncidentRun, WorkflowHistory | None]] = [
        (run_of(GATEWAY_MONITOR, "monitor", 1795685730.195), history(GATEWAY_MONITOR)),
        (run_of(COMPENSATED_FAILOVER, "failover", 1795685737.041), history(COMPENSATED_FAILOVER)),
        (run_of(GATEWAY_RESTART, "restart", 1795685739.089), history(GATEWAY_RESTART)),
    ]
    incident.runs = [run for run, _ in runs]
    changes = [
        AvailabilityChange("order-gateway", started, "down", "og-a, the primary, failed"),
        AvailabilityChange("order-gateway", 1795685740.174, "up", "og-a restarted and healthy"),
    ]
    return Case(incident, runs, changes)


FORCED_SUFFIX = "; FORCED by carol: replication guards skipped"
_CAUGHT_UP = (
    "redis-a does not answer; redis-b's link went down 0 s ago (whole seconds), after redis-a "
    "was last seen at 09:35:40.171 UTC (0.3 s ago); offset 631 ≥ 631 last seen on redis-a "
    "(replication id not given)"
)


def _forced(text: str) -> str:
    text = text.replace("holds offset 631 (≥ 631)", "holds offset 631 (≥ 631)" + FORCED_SUFFIX)
    text = text.replace('"max_lag_ms": "0"', '"max_lag_ms": "-1"')
    return text.replace(_CAUGHT_UP, "redis-b not checked: forced by the operator")


def forced_failover() -> Case:
    """The recorded order-state failover, as if carol had forced it (--force skips the guard)."""
    started = 1795685740.421085
    incident = Incident(
        id="order-state/redis-a/1795685740",
        service="order-state",
        type="operator_failover",
        severity="forced",
        cause=f"redis-a failed: redis-a {DEAD}",
        started_at=started,
        detected_at=1795685740.423,
        replica="redis-a",
        status="resolved",
        outcome="failed over to redis-b by force; redis-a re-protected as its replica",
        mitigated_at=1795685740.568,
        resolved_at=1795685740.983,
        forced_by="carol",
        notes=[
            IncidentNote(started, "transition", "redis-a", f"redis-a healthy → failed: {DEAD}"),
            IncidentNote(1795685740.43, "failover", "redis-a", "failover forced by carol"),
            IncidentNote(1795685740.983, "reprotect-state-done", "redis-a", "redis-a replicates"),
        ],
        version=5,
    )
    runs: list[tuple[IncidentRun, WorkflowHistory | None]] = [
        (run_of(STATE_MONITOR, "monitor", 1795685730.195), history(STATE_MONITOR)),
        (
            run_of(STATE_FAILOVER, "failover-state", 1795685740.433),
            history(STATE_FAILOVER, _forced),
        ),
        (run_of(STATE_REPROTECT, "reprotect-state", 1795685740.574), history(STATE_REPROTECT)),
    ]
    incident.runs = [run for run, _ in runs]
    changes = [
        AvailabilityChange("order-state", started, "down", "redis-a, the primary, failed"),
        AvailabilityChange("order-state", 1795685740.541, "degraded", "redis-b alone"),
        AvailabilityChange("order-state", 1795685740.983, "up", "redis-a replicates redis-b"),
    ]
    return Case(incident, runs, changes)


def state_failover() -> Case:
    """The recorded order-state failover as it ran: the caught-up guard held."""
    case = forced_failover()
    case.incident.forced_by = None
    case.runs[1] = (case.runs[1][0], history(STATE_FAILOVER))
    return case


HOSTILE_TEXT = f"{HOSTILE} | `tick` [x](javascript:alert(2)) & <b>bold</b>\nsecond line"


def hostile() -> Case:
    """Names and reasons that would break a table or run a script if not escaped."""
    case = gateway_failover()
    inc = case.incident
    inc.replica = HOSTILE
    inc.cause = HOSTILE_TEXT
    inc.outcome = HOSTILE_TEXT
    inc.notes.append(IncidentNote(1795685734.0, "frozen", HOSTILE, HOSTILE_TEXT))
    case.changes.append(AvailabilityChange("order-gateway", 1795685734.2, "degraded", HOSTILE))
    gone = IncidentRun(f"restart/order-gateway/{HOSTILE}", None, "restart", 1795685734.1)
    case.runs[1] = (
        case.runs[1][0],
        history(GATEWAY_FAILOVER, lambda t: t.replace("healthy standby", HOSTILE_TEXT[:-12])),
    )
    case.runs.append((gone, None))
    inc.runs.append(gone)
    return case


CASES: dict[str, Callable[[], Case]] = {
    "failover-order-gateway": gateway_failover,
    "compensated-failover-order-gateway": compensated_failover,
    "forced-failover-order-state": forced_failover,
}

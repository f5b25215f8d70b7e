"""``drc incidents|history|failures`` output: tables for people, stable JSON for tools."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drc.incident import FailureRecord, Incident
from drc.store.availability import FailuresSummary, HistorySummary
from reports.fmt import iso_s


def iso(seconds: float | None) -> str | None:
    """UTC ISO-8601 with milliseconds and ``Z``, as reports write it; None stays None."""
    return None if seconds is None else iso_s(seconds)


def _span(start: float, end: float | None) -> str:
    return "-" if end is None else f"{end - start:.2f} s"


def incident_json(incident: Incident) -> dict[str, Any]:
    """One incident, times as ISO-8601, with TTD/TTM/TTR in seconds."""
    data = asdict(incident)
    for key in ("started_at", "detected_at", "mitigated_at", "resolved_at"):
        data[key] = iso(data[key])
    for run in data["runs"]:
        run["started_at"] = iso(run["started_at"])
    for note in data["notes"]:
        note["at"] = iso(note["at"])
    start = incident.started_at
    data["ttd_s"] = round(incident.detected_at - start, 3)
    data["ttm_s"] = (
        None if incident.mitigated_at is None else round(incident.mitigated_at - start, 3)
    )
    data["ttr_s"] = None if incident.resolved_at is None else round(incident.resolved_at - start, 3)
    return data


def incidents_table(incidents: list[Incident]) -> str:
    """Newest first; a near miss on one line of its own kind."""
    if not incidents:
        return "no incidents in this period"
    lines = [f"{'INCIDENT':44} {'SEV':8} {'STATUS':9} {'TTD':>8} {'TTM':>8} {'TTR':>8}  CAUSE"]
    for i in incidents:
        status = "near-miss" if i.near_miss else i.status
        lines.append(
            f"{i.id:44} {i.severity:8} {status:9} {_span(i.started_at, i.detected_at):>8} "
            f"{_span(i.started_at, i.mitigated_at):>8} {_span(i.started_at, i.resolved_at):>8}  "
            f"{i.cause}"
        )
    return "\n".join(lines)


def failure_json(failure: FailureRecord) -> dict[str, Any]:
    """One failure, time as ISO-8601."""
    data = asdict(failure)
    data["at"] = iso(failure.at)
    return data


def failures_json(summary: FailuresSummary) -> dict[str, Any]:
    """The seed's failures list: failures, total_count, critical_count, time_period_hours."""
    return {
        "failures": [failure_json(f) for f in summary.failures],
        "total_count": summary.total_count,
        "critical_count": summary.critical_count,
        "time_period_hours": summary.time_period_hours,
    }


def failures_table(summary: FailuresSummary) -> str:
    """Newest first, with the counts on top."""
    head = (
        f"{summary.total_count} failures ({summary.critical_count} critical) in the last "
        f"{summary.time_period_hours:g} h"
    )
    rows = [
        f"{iso(f.at)}  {f.severity:8} {f.type:17} {f.service}/{f.replica or '-'}: {f.description}"
        for f in summary.failures
    ]
    return "\n".join([head, *rows])


def history_json(summary: HistorySummary) -> dict[str, Any]:
    """Availability per service, incident counts, MTTD/MTTM/MTTR with their formulas."""
    return {
        "since": iso(summary.since),
        "until": iso(summary.until),
        "services": [
            {
                "service": a.service,
                "availability_pct": round(a.availability_pct, 4),
                "period_s": round(a.period_s, 3),
                "up_s": round(a.up_s, 3),
                "degraded_s": round(a.degraded_s, 3),
                "down_s": round(a.down_s, 3),
                "downtime": [[iso(s), iso(e)] for s, e in a.downtime],
            }
            for a in summary.availability
        ],
        "incidents": summary.incidents,
        "near_misses": summary.near_misses,
        "by_type": summary.by_type,
        "by_severity": summary.by_severity,
        **{
            name: {"seconds": m.seconds, "count": m.count, "formula": m.formula}
            for name, m in (("mttd", summary.mttd), ("mttm", summary.mttm), ("mttr", summary.mttr))
        },
    }


def history_table(summary: HistorySummary) -> str:
    """Availability per service, then the incident statistics."""
    lines = [f"from {iso(summary.since)} to {iso(summary.until)}", ""]
    lines.append(f"{'SERVICE':20} {'AVAILABILITY':>13} {'DOWN':>10} {'DEGRADED':>10}")
    for a in summary.availability:
        lines.append(
            f"{a.service:20} {a.availability_pct:12.4f}% {a.down_s:9.2f}s {a.degraded_s:9.2f}s"
        )
    lines += [
        "",
        f"incidents: {summary.incidents} (near misses: {summary.near_misses}); "
        f"by type: {summary.by_type or '-'}; by severity: {summary.by_severity or '-'}",
        summary.mttd.formula,
        summary.mttm.formula,
        summary.mttr.formula,
    ]
    return "\n".join(lines)

"""Between the kernel's dataclasses (Unix seconds) and the store's rows (UTC datetimes).

Writes go through plain column dictionaries, because ``apply`` upserts with Core
``INSERT ... ON CONFLICT``; reads come back as ORM rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast

from drc.incident import (
    Availability,
    AvailabilityChange,
    FailureRecord,
    Incident,
    IncidentNote,
    IncidentRun,
    IncidentStatus,
)
from drc.store.models import (
    AvailabilityChangeRow,
    FailureRow,
    IncidentRow,
    IncidentRunRow,
)


def to_utc(seconds: float) -> datetime:
    """Unix seconds as an aware UTC datetime (microsecond resolution)."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def maybe_utc(seconds: float | None) -> datetime | None:
    """``to_utc``, passing ``None`` through."""
    return None if seconds is None else to_utc(seconds)


def to_seconds(moment: datetime) -> float:
    """An aware datetime as Unix seconds."""
    return moment.timestamp()


def maybe_seconds(moment: datetime | None) -> float | None:
    """``to_seconds``, passing ``None`` through."""
    return None if moment is None else to_seconds(moment)


def incident_values(incident: Incident) -> dict[str, Any]:
    """The ``incidents`` row of a snapshot (its runs go to their own table)."""
    return {
        "id": incident.id,
        "service": incident.service,
        "type": incident.type,
        "severity": incident.severity,
        "cause": incident.cause,
        "replica": incident.replica,
        "status": incident.status,
        "outcome": incident.outcome,
        "started_at": to_utc(incident.started_at),
        "detected_at": to_utc(incident.detected_at),
        "mitigated_at": maybe_utc(incident.mitigated_at),
        "resolved_at": maybe_utc(incident.resolved_at),
        "near_miss": incident.near_miss,
        "forced_by": incident.forced_by,
        "notes": [asdict(note) for note in incident.notes],
        "version": incident.version,
    }


def run_values(incident_id: str, run: IncidentRun) -> dict[str, Any]:
    """The ``incident_runs`` row of one run."""
    return {
        "incident_id": incident_id,
        "workflow_id": run.workflow_id,
        "run_id": run.run_id,
        "kind": run.kind,
        "started_at": to_utc(run.started_at),
    }


def failure_values(failure: FailureRecord) -> dict[str, Any]:
    """The ``failures`` row of one record."""
    values = asdict(failure)
    values["at"] = to_utc(failure.at)
    return values


def change_values(change: AvailabilityChange) -> dict[str, Any]:
    """The ``availability_changes`` row of one change."""
    values = asdict(change)
    values["at"] = to_utc(change.at)
    return values


def incident(row: IncidentRow, runs: Sequence[IncidentRunRow]) -> Incident:
    """The kernel ``Incident`` of a row and its runs (in the order given)."""
    return Incident(
        id=row.id,
        service=row.service,
        type=row.type,
        severity=row.severity,
        cause=row.cause,
        started_at=to_seconds(row.started_at),
        detected_at=to_seconds(row.detected_at),
        replica=row.replica,
        status=cast(IncidentStatus, row.status),
        outcome=row.outcome,
        mitigated_at=maybe_seconds(row.mitigated_at),
        resolved_at=maybe_seconds(row.resolved_at),
        near_miss=row.near_miss,
        forced_by=row.forced_by,
        runs=[run(r) for r in runs],
        notes=[IncidentNote(**note) for note in row.notes],
        version=row.version,
    )


def run(row: IncidentRunRow) -> IncidentRun:
    """The kernel ``IncidentRun`` of a row."""
    return IncidentRun(
        workflow_id=row.workflow_id,
        run_id=row.run_id,
        kind=row.kind,
        started_at=to_seconds(row.started_at),
    )


def failure(row: FailureRow) -> FailureRecord:
    """The kernel ``FailureRecord`` of a row."""
    return FailureRecord(
        key=row.key,
        service=row.service,
        replica=row.replica,
        type=row.type,
        severity=row.severity,
        description=row.description,
        at=to_seconds(row.at),
        incident_id=row.incident_id,
    )


def change(row: AvailabilityChangeRow) -> AvailabilityChange:
    """The kernel ``AvailabilityChange`` of a row."""
    return AvailabilityChange(
        service=row.service,
        at=to_seconds(row.at),
        state=cast(Availability, row.state),
        reason=row.reason,
    )

"""Availability, incident statistics and failure lists from what the store returns; no I/O.

Kept apart from the store so the arithmetic can be tested exhaustively (and property-tested)
without a database, and reused by reports and the CLI on whatever records they hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from drc.incident import Availability, AvailabilityChange, FailureRecord, Incident

SERVING: frozenset[Availability] = frozenset({"up", "degraded"})
"""States in which the service takes traffic: degraded still serves, only without redundancy."""


@dataclass(frozen=True)
class ServiceAvailability:
    """How much of a window a service spent in each state."""

    service: str
    period_s: float
    """The window's length, ``until - since``."""
    up_s: float
    degraded_s: float
    down_s: float
    availability_pct: float
    """``100 * (up_s + degraded_s) / period_s``; 100 for an empty window."""
    downtime: list[tuple[float, float]] = field(default_factory=list)
    """Each stretch of ``down`` as (start, end) Unix seconds, clipped to the window."""
    changes: int = 0
    """Availability changes that fell inside the window."""


def service_availability(
    service: str,
    changes: Sequence[AvailabilityChange],
    before: AvailabilityChange | None,
    since: float,
    until: float,
) -> ServiceAvailability:
    """Time spent up, degraded and down over ``[since, until)``.

    The state at ``since`` is ``before``'s (the last change before the window, from
    ``IncidentStore.last_change_before``) or, when there is none, ``up``: a service with no
    record before the window is taken as up, since drc records every change away from up.
    ``changes`` need not be sorted, nor limited to the window: earlier ones set the state at
    ``since``, later ones are ignored. Changes of other services must not be passed.
    """
    if until < since:
        raise ValueError(f"window ends ({until}) before it starts ({since})")
    timeline = sorted(changes, key=lambda c: c.at)  # stable: same-time changes keep their order
    state: Availability = before.state if before is not None else "up"
    known_since = before.at if before is not None else float("-inf")
    for change in timeline:
        if known_since <= change.at <= since:
            state, known_since = change.state, change.at
    inside = [c for c in timeline if since < c.at < until]
    spent: dict[Availability, float] = {"up": 0.0, "degraded": 0.0, "down": 0.0}
    downtime: list[tuple[float, float]] = []
    bounds = [since, *(c.at for c in inside), until]
    states = [state, *(c.state for c in inside)]
    for (start, end), current in zip(pairwise(bounds), states, strict=True):
        spent[current] += end - start
        if current == "down" and end > start:
            _extend(downtime, start, end)
    period = until - since
    serving = spent["up"] + spent["degraded"]
    return ServiceAvailability(
        service=service,
        period_s=period,
        up_s=spent["up"],
        degraded_s=spent["degraded"],
        down_s=spent["down"],
        availability_pct=100.0 * serving / period if period > 0 else 100.0,
        downtime=downtime,
        changes=sum(1 for c in timeline if since <= c.at < until),
    )


def _extend(downtime: list[tuple[float, float]], start: float, end: float) -> None:
    # "down" then "down" again (a second replica failing) is one outage, not two.
    if downtime and downtime[-1][1] == start:
        downtime[-1] = (downtime[-1][0], end)
    else:
        downtime.append((start, end))


@dataclass(frozen=True)
class MeanTime:
    """A mean duration over incidents, with the formula that produced it."""

    seconds: float | None
    """``None`` when no incident qualified."""
    count: int
    """How many incidents the mean is over."""
    formula: str
    """How it was computed, for the report (``MTTR = mean(resolved_at − started_at) ...``)."""


@dataclass(frozen=True)
class HistorySummary:
    """What happened over a window: availability per service, incidents, mean times."""

    since: float
    until: float
    availability: list[ServiceAvailability]
    incidents: int
    """Incidents that started in the window, near misses excluded."""
    by_type: dict[str, int]
    by_severity: dict[str, int]
    near_misses: int
    mttd: MeanTime
    mttm: MeanTime
    mttr: MeanTime


def history_summary(
    incidents: Sequence[Incident],
    availability: Sequence[ServiceAvailability],
    since: float,
    until: float,
) -> HistorySummary:
    """Summarise the incidents that started in ``[since, until)`` and the given availability.

    Near misses are counted apart and left out of everything else. MTTD, MTTM and MTTR are
    means of ``detected_at``, ``mitigated_at`` and ``resolved_at`` minus ``started_at`` over the
    resolved incidents (MTTM over those that recorded a mitigation); ``None`` when there are
    none, since an open incident has no repair time yet.
    """
    window = [i for i in incidents if since <= i.started_at < until]
    real = [i for i in window if not i.near_miss]
    resolved = [i for i in real if i.status == "resolved" and i.resolved_at is not None]
    return HistorySummary(
        since=since,
        until=until,
        availability=sorted(availability, key=lambda a: a.service),
        incidents=len(real),
        by_type=dict(sorted(Counter(i.type for i in real).items())),
        by_severity=dict(sorted(Counter(i.severity for i in real).items())),
        near_misses=len(window) - len(real),
        mttd=_mean("MTTD", "detected_at", resolved, lambda i: i.detected_at),
        mttm=_mean("MTTM", "mitigated_at", resolved, lambda i: i.mitigated_at),
        mttr=_mean("MTTR", "resolved_at", resolved, lambda i: i.resolved_at),
    )


def _mean(
    name: str,
    field_name: str,
    incidents: Sequence[Incident],
    end: Callable[[Incident], float | None],
) -> MeanTime:
    durations = [e - i.started_at for i in incidents if (e := end(i)) is not None]
    formula = f"{name} = mean({field_name} − started_at)"
    scope = "resolved incidents, near misses excluded"
    if not durations:
        return MeanTime(None, 0, f"{formula}: no {scope}")
    mean = sum(durations) / len(durations)
    return MeanTime(mean, len(durations), f"{formula} over {len(durations)} {scope} = {mean:.3f} s")


@dataclass(frozen=True)
class FailuresSummary:
    """The failures list of a period, newest first, with its counts."""

    failures: list[FailureRecord]
    total_count: int
    critical_count: int
    time_period_hours: float


def failures_summary(failures: Sequence[FailureRecord], hours: float) -> FailuresSummary:
    """The failures of the last ``hours`` (as the caller selected them), newest first."""
    ordered = sorted(failures, key=lambda f: f.at, reverse=True)
    return FailuresSummary(
        failures=ordered,
        total_count=len(ordered),
        critical_count=sum(1 for f in ordered if f.severity == "critical"),
        time_period_hours=hours,
    )

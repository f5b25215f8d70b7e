"""Availability arithmetic, incident statistics and failures lists: pure, no database."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drc.incident import Availability, AvailabilityChange, FailureRecord, Incident
from drc.store.availability import (
    failures_summary,
    history_summary,
    service_availability,
)

SINCE, UNTIL = 1000.0, 2000.0


def at(moment: float, state: Availability) -> AvailabilityChange:
    return AvailabilityChange("orders", moment, state, f"{state} at {moment}")


def window(changes: list[AvailabilityChange], before: AvailabilityChange | None = None) -> Any:
    return service_availability("orders", changes, before, SINCE, UNTIL)


# -- service_availability ------------------------------------------------------------------


def test_no_record_at_all_is_taken_as_up() -> None:
    result = window([])
    assert (result.up_s, result.degraded_s, result.down_s) == (1000.0, 0.0, 0.0)
    assert result.availability_pct == 100.0
    assert (result.downtime, result.changes, result.period_s) == ([], 0, 1000.0)


def test_state_before_the_window_holds_at_its_start() -> None:
    result = window([], before=at(10.0, "down"))
    assert result.down_s == 1000.0
    assert result.availability_pct == 0.0
    assert result.downtime == [(SINCE, UNTIL)]


def test_degraded_still_serves() -> None:
    result = window([at(1500.0, "degraded")])
    assert (result.up_s, result.degraded_s, result.down_s) == (500.0, 500.0, 0.0)
    assert result.availability_pct == 100.0


def test_downtime_inside_the_window() -> None:
    result = window([at(1100.0, "down"), at(1150.0, "degraded"), at(1300.0, "up")])
    assert (result.up_s, result.degraded_s, result.down_s) == (800.0, 150.0, 50.0)
    assert result.availability_pct == pytest.approx(95.0)
    assert result.downtime == [(1100.0, 1150.0)]
    assert result.changes == 3


def test_changes_outside_the_window_are_clipped() -> None:
    changes = [
        at(500.0, "up"),
        at(900.0, "down"),  # sets the state at SINCE
        at(1900.0, "up"),
        at(2500.0, "down"),  # after the window: ignored
    ]
    result = window(changes, before=at(400.0, "degraded"))
    assert result.down_s == 900.0
    assert result.downtime == [(SINCE, 1900.0)]
    assert result.changes == 1


def test_a_change_older_than_before_does_not_override_it() -> None:
    result = window([at(100.0, "down")], before=at(900.0, "up"))
    assert result.down_s == 0.0


def test_change_exactly_at_the_bounds() -> None:
    result = window([at(SINCE, "down"), at(UNTIL, "up")], before=at(10.0, "up"))
    assert result.down_s == 1000.0
    assert result.changes == 1  # [since, until): the change at UNTIL is the next window's


def test_down_twice_is_one_outage_and_unsorted_input_is_fine() -> None:
    result = window([at(1600.0, "up"), at(1200.0, "down"), at(1400.0, "down")])
    assert result.downtime == [(1200.0, 1600.0)]
    assert result.down_s == 400.0


def test_empty_and_inverted_windows() -> None:
    empty = service_availability("orders", [], at(1.0, "down"), SINCE, SINCE)
    assert (empty.period_s, empty.availability_pct) == (0.0, 100.0)
    with pytest.raises(ValueError, match="before it starts"):
        service_availability("orders", [], None, UNTIL, SINCE)


states = st.sampled_from(["up", "degraded", "down"])
moments = st.floats(min_value=0.0, max_value=3000.0, allow_nan=False)


@given(
    changes=st.lists(st.tuples(moments, states), max_size=30),
    before=st.none() | states,
    since=moments,
    length=st.floats(min_value=0.0, max_value=3000.0),
)
def test_time_in_each_state_adds_up_to_the_period(
    changes: list[tuple[float, Availability]],
    before: Availability | None,
    since: float,
    length: float,
) -> None:
    until = since + length
    previous = None if before is None else AvailabilityChange("s", since - 1.0, before, "")
    records = [AvailabilityChange("s", moment, state, "") for moment, state in changes]
    result = service_availability("s", records, previous, since, until)
    total = result.up_s + result.degraded_s + result.down_s
    assert math.isclose(total, result.period_s, abs_tol=1e-6)
    assert min(result.up_s, result.degraded_s, result.down_s) >= 0.0
    assert 0.0 <= result.availability_pct <= 100.0 + 1e-9
    outages = sum(end - start for start, end in result.downtime)
    assert math.isclose(outages, result.down_s, abs_tol=1e-6)
    bounds = [b for interval in result.downtime for b in interval]
    assert bounds == sorted(bounds)
    assert all(since <= b <= until for b in bounds)


# -- history_summary -----------------------------------------------------------------------


def incident(n: int, **kw: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": f"i{n}",
        "service": "orders",
        "type": "replica_failed",
        "severity": "high",
        "cause": "c",
        "started_at": SINCE + 10 * n,
        "detected_at": SINCE + 10 * n + 2,
    }
    return Incident(**(fields | kw))


def resolved(n: int, detect: float, mitigate: float | None, resolve: float, **kw: Any) -> Incident:
    start = SINCE + 10 * n
    return incident(
        n,
        status="resolved",
        detected_at=start + detect,
        mitigated_at=None if mitigate is None else start + mitigate,
        resolved_at=start + resolve,
        **kw,
    )


def test_history_counts_and_mean_times() -> None:
    incidents = [
        resolved(1, detect=2, mitigate=4, resolve=30),
        resolved(2, detect=4, mitigate=None, resolve=50, type="service_down", severity="critical"),
        incident(3),  # open: counted, no repair time yet
        resolved(4, detect=100, mitigate=100, resolve=100, near_miss=True),
        incident(200),  # starts after the window
    ]
    up = service_availability("orders", [], None, SINCE, UNTIL)
    summary = history_summary(incidents, [up], SINCE, UNTIL)
    assert summary.incidents == 3
    assert summary.near_misses == 1
    assert summary.by_type == {"replica_failed": 2, "service_down": 1}
    assert summary.by_severity == {"critical": 1, "high": 2}
    assert (summary.mttd.seconds, summary.mttd.count) == (3.0, 2)
    assert (summary.mttm.seconds, summary.mttm.count) == (4.0, 1)
    assert (summary.mttr.seconds, summary.mttr.count) == (40.0, 2)
    assert summary.mttd.formula.startswith("MTTD = mean(detected_at − started_at) over 2 ")
    assert summary.mttr.formula.endswith("= 40.000 s")
    assert summary.availability == [up]


def test_mean_times_are_none_without_resolved_incidents() -> None:
    summary = history_summary([incident(1)], [], SINCE, UNTIL)
    for mean in (summary.mttd, summary.mttm, summary.mttr):
        assert (mean.seconds, mean.count) == (None, 0)
        assert "no resolved incidents" in mean.formula


# -- failures_summary ----------------------------------------------------------------------


def test_failures_summary_counts_and_orders_newest_first() -> None:
    def record(key: str, moment: float, severity: str) -> FailureRecord:
        return FailureRecord(key, "orders", None, "replica_failed", severity, "", moment)

    summary = failures_summary(
        [record("a", 1.0, "critical"), record("b", 3.0, "high"), record("c", 2.0, "critical")], 24
    )
    assert [f.key for f in summary.failures] == ["b", "c", "a"]
    assert (summary.total_count, summary.critical_count) == (3, 2)
    assert summary.time_period_hours == 24

"""The fleet's pure rules: root cause through depends_on, system health, brake, token bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drc.evacuation import Evacuee, dependency_levels
from drc.fleet import (
    ServiceHealthReport,
    ServiceNode,
    TokenBucket,
    brake,
    dependencies,
    failure_rate,
    holds,
    root_cause,
    system_health,
)

GRAPH = {
    "market-data": ServiceNode((), ("ldn", "nyc")),
    "risk-engine": ServiceNode(("market-data",), ("ldn",)),
    "order-state": ServiceNode((), ("ldn", "nyc")),
    "order-gateway": ServiceNode(("risk-engine", "order-state"), ("ldn", "nyc")),
}


def test_dependencies_are_transitive_nearest_first() -> None:
    assert dependencies("order-gateway", GRAPH) == ["risk-engine", "order-state", "market-data"]
    assert dependencies("market-data", GRAPH) == []


def test_the_root_cause_is_the_deepest_down_dependency() -> None:
    health = {"market-data": "down", "risk-engine": "down"}
    assert root_cause("order-gateway", health, GRAPH) == "market-data"  # type: ignore[arg-type]
    assert root_cause("risk-engine", health, GRAPH) == "market-data"  # type: ignore[arg-type]
    assert root_cause("market-data", health, GRAPH) is None  # type: ignore[arg-type]
    assert root_cause("order-gateway", {"order-state": "down"}, GRAPH) == "order-state"


def test_holds_name_every_dependent_of_a_down_service() -> None:
    held = holds({"market-data": "down"}, GRAPH)
    assert held == {"risk-engine": "market-data", "order-gateway": "market-data"}
    assert holds({"order-gateway": "down"}, GRAPH) == {}  # nothing depends on it


def test_system_failure_at_thirty_percent_down() -> None:
    health = {"a": "down", "b": "down", "c": "up", "d": "up", "e": "up"}
    assert failure_rate(health) == 2 / 5  # type: ignore[arg-type]
    assert system_health(health, 0.3) == "critical"  # type: ignore[arg-type]
    # One service down is never a system failure, even when it is a third of the catalog.
    assert system_health({"a": "down", "b": "up", "c": "up"}, 0.3) == "degraded"
    assert system_health({"a": "degraded", "b": "up"}, 0.3) == "degraded"
    assert system_health({"a": "up"}, 0.3) == "healthy"


def test_the_brake_paces_at_system_failure_and_freezes_when_every_region_is_down() -> None:
    health = {"market-data": "down", "order-state": "down", "risk-engine": "up"}
    mode, reason = brake(health, {}, GRAPH, 0.3)  # type: ignore[arg-type]
    assert mode == "paced" and reason.startswith("system_failure: 2 of 3 services down (67% ≥ 30%)")
    reports = {
        "market-data": ServiceHealthReport("market-data", "down", 1.0, regions_down=["ldn"]),
        "order-state": ServiceHealthReport("order-state", "down", 1.0, regions_down=["nyc"]),
    }
    mode, reason = brake(health, reports, GRAPH, 0.3)  # type: ignore[arg-type]
    assert mode == "frozen" and "every region (ldn, nyc) looks down at once" in reason
    assert brake({"market-data": "up"}, {}, GRAPH, 0.3)[0] == "normal"


def test_dependencies_come_first_in_an_evacuation_order() -> None:
    wanted = [Evacuee(s, "", (), ()) for s in ("order-gateway", "risk-engine", "market-data")]
    order = [e.service for level in dependency_levels(wanted, GRAPH) for e in level]
    assert order == ["market-data", "risk-engine", "order-gateway"]


@given(
    per_minute=st.floats(min_value=1, max_value=600),
    steps=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=60),
)
def test_the_bucket_never_grants_more_than_its_rate_allows(
    per_minute: float, steps: list[float]
) -> None:
    bucket = TokenBucket(per_minute, 1.0, 0.0)
    now, granted = 0.0, 0
    for step in steps:
        now += step
        while bucket.take(now):
            granted += 1
        assert 0 <= bucket.tokens <= per_minute
    assert granted <= 1 + now * per_minute / 60 + 1e-6


@given(
    health=st.dictionaries(
        st.sampled_from(list(GRAPH)), st.sampled_from(["up", "degraded", "down"])
    )
)
def test_a_root_cause_is_down_and_has_no_down_dependency_unless_in_a_cycle(
    health: dict[str, str],
) -> None:
    for service, root in holds(health, GRAPH).items():  # type: ignore[arg-type]
        assert health[root] == "down" and root in dependencies(service, GRAPH)
        assert not any(health.get(d) == "down" for d in dependencies(root, GRAPH))

"""Region evacuation's pure rules: when a region is down, who is evacuated, in which order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drc.evacuation import dependency_levels, evacuees
from drc.fleet import ServiceHealthReport, ServiceNode, dependencies, regions_down


def _node(depends: tuple[str, ...], *replicas: tuple[str, str]) -> ServiceNode:
    regions = tuple(sorted({region for _, region in replicas}))
    return ServiceNode(depends, regions, replicas, "active-standby")


GRAPH = {
    "market-data": _node((), ("md-a", "ldn"), ("md-b", "nyc")),
    "risk-engine": _node(("market-data",), ("re-a", "ldn"), ("re-b", "nyc")),
    "order-state": _node((), ("redis-a", "ldn"), ("redis-b", "nyc"), ("redis-c", "nyc")),
    "order-gateway": _node(
        ("risk-engine", "market-data", "order-state"), ("og-a", "ldn"), ("og-b", "nyc")
    ),
    "traffic-manager": _node((), ("haproxy", "edge")),
}


def _report(service: str, *regions: str) -> ServiceHealthReport:
    return ServiceHealthReport(service, "down", 0.0, regions_down=list(regions))


def test_a_region_is_down_when_every_service_there_lost_every_replica_there() -> None:
    ldn = {s: _report(s, "ldn") for s in GRAPH if s != "traffic-manager"}
    assert regions_down(ldn, GRAPH) == ["ldn"]
    partly = {**ldn, "order-gateway": _report("order-gateway")}
    assert regions_down(partly, GRAPH) == []


def test_a_region_of_one_service_is_never_down_and_losing_every_region_is_blindness() -> None:
    assert regions_down({"traffic-manager": _report("traffic-manager", "edge")}, GRAPH) == []
    everything = {s: _report(s, *GRAPH[s].regions) for s in GRAPH}
    assert regions_down(everything, GRAPH) == []


def test_evacuees_are_the_services_with_replicas_in_the_region_dependencies_first() -> None:
    found = evacuees("ldn", GRAPH)
    assert [e.service for e in found] == [
        "market-data",
        "risk-engine",
        "order-state",
        "order-gateway",
    ]
    state = next(e for e in found if e.service == "order-state")
    assert state.in_region == ("redis-a",) and state.elsewhere == ("redis-b", "redis-c")
    levels = [[e.service for e in level] for level in dependency_levels(found, GRAPH)]
    assert levels == [["market-data", "order-state"], ["risk-engine"], ["order-gateway"]]


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), max_size=3),
        min_size=1,
    )
)
def test_every_service_is_placed_once_after_its_dependencies_unless_in_a_cycle(
    edges: dict[str, list[str]],
) -> None:
    graph = {
        name: _node(tuple(d for d in deps if d != name), (f"{name}-1", "ldn"))
        for name, deps in edges.items()
    }
    levels = dependency_levels(evacuees("ldn", graph), graph)
    placed = [e.service for level in levels for e in level]
    assert sorted(placed) == sorted(graph)
    index = {name: i for i, level in enumerate(levels) for name in (e.service for e in level)}
    for name in graph:
        for dep in dependencies(name, graph):
            if dep in graph and name not in dependencies(dep, graph):
                assert index[dep] < index[name], (name, dep, levels)

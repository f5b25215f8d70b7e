"""Chaos experiments as data (runbooks/chaos.py): validation, blast radius, plan; pure."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drc.catalog_loader import load_catalog
from drc.chaos import FaultTarget
from drc.errors import ChaosError
from drc.settings import DEFAULT_CATALOG
from runbooks.chaos import (
    Prepared,
    candidates,
    experiment_names,
    experiment_path,
    load_experiment,
    parse_experiment,
    plan,
    recovery_probes,
    select,
)

CATALOG = load_catalog(DEFAULT_CATALOG)
SHIPPED = (
    "latency",
    "netcut-primary",
    "primary-crash",
    "region-loss",
    "replica-hang",
    "replication-break",
)


def experiment(**method: Any) -> dict[str, Any]:
    fault = {"name": "f", "fault": "kill", "target": {"service": "order-gateway"}, **method}
    return {
        "title": "t",
        "steady-state-hypothesis": {"title": "h", "probes": [{"name": "p", "type": "no-incident"}]},
        "method": [fault],
        "recovery-objective": {"detected-within-s": 1, "recovered-within-s": 2},
    }


def issues(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ChaosError) as caught:
        parse_experiment(data, CATALOG, "x.yaml")
    return [str(i) for i in caught.value.issues]


def test_the_demo_ships_six_valid_experiments() -> None:
    assert tuple(experiment_names()) == SHIPPED
    for name in SHIPPED:
        assert load_experiment(experiment_path(name), CATALOG).method


def test_every_problem_is_named_with_its_location_in_one_pass() -> None:
    data = experiment(target={"service": "order-gateway", "replica": "og-a; rm -rf /"})
    data["method"].append({"name": "g", "fault": "netcut", "target": {"service": "nowhere"}})
    data["method"].append({"name": "h", "fault": "wipe-disk", "target": {"service": "x"}})
    found = issues(data)
    assert any(i.startswith("method[0].target.replica:") for i in found), found
    assert "method[1].target.service: unknown service 'nowhere'" in found
    assert any(i.startswith("method[2].fault:") for i in found), found


def test_faults_that_could_not_be_undone_or_do_not_fit_are_refused() -> None:
    unrestartable = CATALOG.model_dump(mode="json")
    unrestartable["services"][0]["replicas"][0]["process"] = None
    catalog = type(CATALOG).model_validate(unrestartable)
    with pytest.raises(ChaosError) as caught:
        parse_experiment(experiment(target={"service": "market-data"}), catalog)
    assert "method[0].fault: kill of md-a cannot be undone: it has no process-control program" in [
        str(i) for i in caught.value.issues
    ]
    assert issues(experiment(fault="latency", target={"service": "order-state"}))[0].endswith(
        "latency needs an HTTP replica; redis-a is Redis"
    )
    assert issues(experiment(target={"service": "market-data", "replica": "primary"})) == [
        "method[0].target.replica: primary needs an active-standby service; market-data is "
        "active-active"
    ]
    assert issues(experiment(fault="region-stop", target={"region": "mars"})) == [
        "method[0].target.region: unknown region 'mars' (known: edge, ldn, nyc)"
    ]
    assert issues(experiment(select="most(3)"))[0].startswith("method[0].select:")


def test_hostile_names_never_reach_a_path() -> None:
    for name in ("../../etc/passwd", "a/b", "UPPER", ""):
        with pytest.raises(ChaosError, match="not a valid name"):
            experiment_path(name)


def test_candidates_follow_the_monitors_primary_and_exclude_a_redis_primary() -> None:
    fault = parse_experiment(
        experiment(target={"service": "order-gateway", "replica": "primary"}), CATALOG
    ).method[0]
    assert [t.replica for t in candidates(fault, CATALOG, {"order-gateway": "og-b"})] == ["og-b"]
    broken = parse_experiment(
        experiment(fault="replication-break", target={"service": "order-state"}), CATALOG
    ).method[0]
    found = candidates(broken, CATALOG, {"order-state": "redis-b"})
    assert [t.replica for t in found] == ["redis-a", "redis-c"]
    assert {t.primary_url for t in found} == {
        str(CATALOG.service("order-state").replica("redis-b").url)
    }  # type: ignore[union-attr]
    region = parse_experiment(
        experiment(fault="region-stop", target={"region": "ldn"}, select="all"), CATALOG
    ).method[0]
    assert [t.replica for t in candidates(region, CATALOG, {})] == [
        "md-a",
        "re-a",
        "redis-a",
        "og-a",
    ]


def _targets(n: int) -> list[FaultTarget]:
    return [FaultTarget("s", f"r{i}", "ldn", f"http://h:{i + 1}") for i in range(n)]


@given(st.integers(0, 20), st.integers(1, 30), st.integers(1, 100), st.integers())
def test_select_draws_the_asked_share_in_order_and_the_seed_repeats_it(
    n: int, count: int, percent: int, seed: int
) -> None:
    found = _targets(n)
    assert select("all", found, random.Random(seed)) == found
    drawn = select(f"count({count})", found, random.Random(seed))
    assert len(drawn) == min(count, n)
    assert drawn == [t for t in found if t in drawn]  # catalog order kept
    assert drawn == select(f"count({count})", found, random.Random(seed))
    share = select(f"percent({percent})", found, random.Random(seed))
    assert len(share) == -(-n * percent // 100)


def test_plan_refuses_to_leave_a_service_without_a_healthy_replica() -> None:
    crash = load_experiment(experiment_path("primary-crash"), CATALOG)
    standby_down = Prepared(crash, CATALOG, {"order-gateway": "og-a"}, {"order-gateway": ["og-a"]})
    planned, refusal = plan(standby_down, seed=1)
    assert [t.replica for p in planned for t in p.targets] == ["og-a"]
    assert refusal == (
        "order-gateway has no healthy replica outside the blast radius (og-a hit, healthy now: "
        "og-a): it would be left down (allow-unprotected overrides)"
    )
    healthy = Prepared(
        crash, CATALOG, {"order-gateway": "og-a"}, {"order-gateway": ["og-a", "og-b"]}
    )
    assert plan(healthy, seed=1)[1] is None


def test_recovery_probes_default_to_all_but_no_incident_and_can_be_named() -> None:
    crash = load_experiment(experiment_path("primary-crash"), CATALOG)
    assert [p.name for p in recovery_probes(crash, CATALOG)] == [
        "gateway-takes-orders",
        "gateway-healthy",
    ]
    cut = load_experiment(experiment_path("netcut-primary"), CATALOG)
    [orders] = recovery_probes(cut, CATALOG)
    assert orders.method == "POST" and orders.url is not None and orders.url.endswith("/orders")

"""The catalog loader: the demo catalog loads; every malformed one fails with located issues."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest

from drc.catalog import Redundancy
from drc.catalog_loader import cross_check, load_catalog, parse_catalog
from drc.errors import CatalogError, CatalogIssue
from drc.settings import DEFAULT_CATALOG
from drc.yamlio import format_location

PORTS = itertools.count(18101)


def replica(name: str, **extra: Any) -> dict[str, Any]:
    # a port of its own, so that only the duplicate a test writes on purpose is reported
    return {"name": name, "region": "ldn", "url": f"http://127.0.0.1:{next(PORTS)}", **extra}


def service(name: str, *replicas: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "replicas": [replica(r) for r in replicas], **extra}


def catalog(*services: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "services": list(services)}


def issues(data: dict[str, Any]) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data, "test.yaml")
    assert caught.value.source == "test.yaml"
    return [str(issue) for issue in caught.value.issues]


def load_issues(path: Path, text: str) -> list[CatalogIssue]:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert caught.value.source == str(path)
    return caught.value.issues


VALID = catalog(
    service("market-data", "md-a", "md-b", redundancy="active-active"),
    service("risk-engine", "re-a", depends_on=["market-data"]),
)


def with_change(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """VALID with the value at ``path`` replaced (a copy; VALID stays valid)."""
    data = copy.deepcopy(VALID)
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


# --- what loads ----------------------------------------------------------------------------------


def test_the_demo_catalog_loads() -> None:
    demo = load_catalog(DEFAULT_CATALOG)
    assert [s.name for s in demo.services] == [
        "market-data",
        "risk-engine",
        "order-state",
        "order-gateway",
        "traffic-manager",
    ]
    assert sum(len(s.replicas) for s in demo.services) == 10
    gateway = demo.service("order-gateway")
    assert gateway is not None
    assert gateway.redundancy is Redundancy.ACTIVE_STANDBY
    assert gateway.primary == "og-a"
    assert gateway.depends_on == ("risk-engine", "market-data", "order-state")
    state = demo.service("order-state")
    assert state is not None and state.stateful and state.frontend == "127.0.0.1:18300"
    assert [r.protocol for r in state.replicas] == ["redis", "redis", "redis"]
    assert gateway.probe.failure_threshold == 3  # through the YAML anchor
    # Either region can be lost: every trading service has replicas in both, the order store
    # two in nyc (a replica left to acknowledge writes), the traffic manager in neither.
    for service in demo.services:
        regions = {r.region for r in service.replicas}
        expected = {"edge"} if service.name == "traffic-manager" else {"ldn", "nyc"}
        assert regions == expected, (service.name, regions)
    assert [r.region for r in state.replicas] == ["ldn", "nyc", "nyc"]
    assert demo.evacuation.enabled
    assert str(demo.process_control.supervisor_url) == "http://127.0.0.1:18001/RPC2"


def test_a_small_valid_catalog_parses_with_defaults() -> None:
    parsed = parse_catalog(VALID)
    engine = parsed.service("risk-engine")
    assert engine is not None
    assert engine.redundancy is Redundancy.SINGLE
    assert (engine.probe.failure_threshold, engine.probe.recovery_threshold) == (3, 2)
    assert engine.thresholds.latency_degraded_ms is None


def test_a_valid_catalog_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "services:\n"
        "  - name: risk-engine\n"
        "    replicas:\n"
        "      - {name: re-a, region: ldn, url: 'http://127.0.0.1:18111'}\n",
        encoding="utf-8",
    )
    assert load_catalog(path).services[0].replicas[0].name == "re-a"


# --- files that are not YAML catalogs -------------------------------------------------------------


def test_bad_yaml_is_located_by_line_and_column(tmp_path: Path) -> None:
    found = load_issues(tmp_path / "c.yaml", "version: 1\nservices:\n  - name: a\n   region: b\n")
    assert len(found) == 1
    assert found[0].location == "line 4, column 4"
    assert found[0].message.startswith("invalid YAML: ")


def test_unclosed_bracket_is_located_where_the_parser_gave_up(tmp_path: Path) -> None:
    found = load_issues(tmp_path / "c.yaml", "services:\n  - replicas: [x, y\n")
    assert found == [
        CatalogIssue(
            "line 3, column 1", "invalid YAML: expected ',' or ']', but got '<stream end>'"
        )
    ]


def test_duplicate_yaml_key_is_an_error_not_last_wins(tmp_path: Path) -> None:
    text = "version: 1\nservices:\n  - name: a\n    name: b\n    replicas: []\n"
    found = load_issues(tmp_path / "c.yaml", text)
    assert found == [CatalogIssue("line 4, column 5", "invalid YAML: duplicate key 'name'")]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_a_catalog_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    found = load_issues(tmp_path / "c.yaml", text)
    assert found == [CatalogIssue("", "the catalog must be a YAML mapping")]


def test_a_missing_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "missing.yaml")
    assert caught.value.issues == [CatalogIssue("", "cannot read: No such file or directory")]


def test_the_error_message_lists_the_source_and_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("services:\n  - name: a\n    name: b\n", encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(caught.value) == (
        f"{path}: 1 error(s)\n  line 3, column 5: invalid YAML: duplicate key 'name'"
    )


# --- schema errors -------------------------------------------------------------------------------


def test_unknown_key_is_an_error_at_its_location() -> None:
    data = with_change(("services", 0, "replicas", 0, "colour"), "red")
    assert issues(data) == ["services[0].replicas[0].colour: Extra inputs are not permitted"]


@pytest.mark.parametrize("key", ["http", "redis", "tcp", "postgres"])
def test_unknown_key_named_like_a_check_type_keeps_its_location(key: str) -> None:
    data = with_change(("services", 1, "replicas", 0, key), "x")
    assert issues(data) == [f"services[1].replicas[0].{key}: Extra inputs are not permitted"]


def test_unknown_top_level_key_is_an_error() -> None:
    data = {**VALID, "servics": []}
    assert issues(data) == ["servics: Extra inputs are not permitted"]


def test_missing_services_is_an_error() -> None:
    assert issues({"version": 1}) == ["services: Field required"]


def test_empty_services_is_an_error() -> None:
    assert issues(catalog()) == [
        "services: Tuple should have at least 1 item after validation, not 0"
    ]


def test_unsupported_version_is_an_error() -> None:
    assert issues({**VALID, "version": 2}) == ["version: Input should be 1"]


def test_bad_service_name_is_an_error() -> None:
    found = issues(with_change(("services", 0, "name"), "Market_Data"))
    assert len(found) == 2
    assert found[0].startswith("services[0].name: String should match pattern")
    # reported in the same run: as written, risk-engine needs a service no entry is called
    assert found[1] == "services[1].depends_on[0]: unknown service 'market-data'"


def test_bad_replica_url_is_an_error() -> None:
    found = issues(with_change(("services", 0, "replicas", 1, "url"), "not a url"))
    assert len(found) == 1
    assert found[0].startswith("services[0].replicas[1].url: Input should be a valid URL")


@pytest.mark.parametrize("interval", [-1, 0, 99])
def test_negative_or_too_small_interval_is_an_error(interval: int) -> None:
    found = issues(with_change(("services", 0, "probe"), {"interval_ms": interval}))
    assert found == ["services[0].probe.interval_ms: Input should be greater than or equal to 100"]


def test_interval_above_five_seconds_is_an_error() -> None:
    found = issues(with_change(("services", 0, "probe"), {"interval_ms": 6000}))
    assert found == ["services[0].probe.interval_ms: Input should be less than or equal to 5000"]


def test_timeout_above_interval_is_an_error() -> None:
    probe = {"interval_ms": 500, "timeout_ms": 600}
    found = issues(with_change(("services", 1, "probe"), probe))
    assert found == [
        "services[1].probe: Value error, timeout_ms (600) must not exceed interval_ms (500)"
    ]


def test_timeout_equal_to_interval_is_fine() -> None:
    parse_catalog(with_change(("services", 1, "probe"), {"interval_ms": 500, "timeout_ms": 500}))


@pytest.mark.parametrize("threshold", ["failure_threshold", "recovery_threshold"])
def test_zero_thresholds_are_errors(threshold: str) -> None:
    found = issues(with_change(("services", 0, "probe"), {threshold: 0}))
    assert found == [f"services[0].probe.{threshold}: Input should be greater than or equal to 1"]


def test_flap_max_transitions_below_two_is_an_error() -> None:
    found = issues(with_change(("services", 0, "thresholds"), {"flap_max_transitions": 1}))
    assert found == [
        "services[0].thresholds.flap_max_transitions: Input should be greater than or equal to 2"
    ]


def test_unknown_check_type_is_located_at_the_check() -> None:
    data = with_change(("services", 1, "replicas", 0, "checks"), [{"type": "ftp", "host": "x"}])
    assert issues(data) == [
        "services[1].replicas[0].checks[0]: Input tag 'ftp' found using 'type' does not match "
        "any of the expected tags: 'http', 'tcp', 'redis', 'postgres'"
    ]


def test_check_without_type_is_located_at_the_check() -> None:
    data = with_change(("services", 1, "replicas", 0, "checks"), [{"host": "x", "port": 1}])
    assert issues(data) == [
        "services[1].replicas[0].checks[0]: Unable to extract tag using discriminator 'type'"
    ]


def test_bad_check_field_location_leaves_out_the_union_tag() -> None:
    checks = [{"type": "tcp", "host": "127.0.0.1", "port": 6379}, {"type": "redis", "port": 0}]
    data = with_change(("services", 1, "replicas", 0, "checks"), checks)
    assert issues(data) == [
        "services[1].replicas[0].checks[1].port: Input should be greater than or equal to 1"
    ]


def test_unknown_key_in_a_check_is_located_in_the_check() -> None:
    checks = [{"type": "tcp", "host": "127.0.0.1", "port": 6379, "http": True}]
    data = with_change(("services", 1, "replicas", 0, "checks"), checks)
    assert issues(data) == [
        "services[1].replicas[0].checks[0].http: Extra inputs are not permitted"
    ]


def test_every_kind_of_check_parses() -> None:
    checks = [
        {"type": "http", "url": "http://127.0.0.1:1/ready", "expect_status": 204},
        {"type": "tcp", "host": "127.0.0.1", "port": 5432},
        {"type": "redis", "port": 6379, "expect_role": "master"},
        {"type": "postgres", "dsn": "host=127.0.0.1 dbname=orders"},
    ]
    parsed = parse_catalog(with_change(("services", 1, "replicas", 0, "checks"), checks))
    assert [c.type for c in parsed.services[1].replicas[0].checks] == [
        "http",
        "tcp",
        "redis",
        "postgres",
    ]


def test_a_lone_bad_item_is_reported_without_an_empty_list_echo() -> None:
    # pydantic counts only the items that validated, so it also calls a tuple whose only item
    # is bad "too short"; the loader reports the item alone
    data = catalog({"name": "a", "replicas": [replica("x", colour="red")]})
    assert issues(data) == ["services[0].replicas[0].colour: Extra inputs are not permitted"]


@pytest.mark.parametrize("frontend", ["127.0.0.1:18200", "haproxy.local:80", "lb-1:65535"])
def test_frontend_accepts_host_and_port(frontend: str) -> None:
    parsed = parse_catalog(with_change(("services", 0, "frontend"), frontend))
    assert parsed.services[0].frontend == frontend


@pytest.mark.parametrize("frontend", ["nope", "127.0.0.1", ":80", "host:port", "a b:80"])
def test_frontend_rejects_anything_but_host_and_port(frontend: str) -> None:
    found = issues(with_change(("services", 0, "frontend"), frontend))
    assert len(found) == 1
    assert found[0].startswith("services[0].frontend: String should match pattern")


# --- cross-references ----------------------------------------------------------------------------


def test_duplicate_replica_name_is_reported_at_each_use() -> None:
    data = catalog(service("a", "x"), service("b", "x"))
    assert issues(data) == [
        "services[0].replicas[0].name: duplicate replica 'x'",
        "services[1].replicas[0].name: duplicate replica 'x'",
    ]


def test_duplicate_replica_within_one_service_is_an_error() -> None:
    data = catalog(service("a", "x", "x", redundancy="active-active"))
    assert issues(data) == [
        "services[0].replicas[0].name: duplicate replica 'x'",
        "services[0].replicas[1].name: duplicate replica 'x'",
    ]


def test_duplicate_service_is_an_error() -> None:
    data = catalog(service("a", "x"), service("a", "y"))
    assert issues(data) == [
        "services[0].name: duplicate service 'a'",
        "services[1].name: duplicate service 'a'",
    ]


def test_dependency_on_an_unknown_service_is_an_error() -> None:
    data = catalog(service("a", "x", depends_on=["nope"]))
    assert issues(data) == ["services[0].depends_on[0]: unknown service 'nope'"]


def test_dependency_on_itself_is_an_error() -> None:
    data = catalog(service("a", "x"), service("b", "y", depends_on=["a", "b"]))
    assert issues(data) == ["services[1].depends_on[1]: a service cannot need itself"]


def test_dependency_cycle_is_an_error_naming_the_cycle() -> None:
    data = catalog(
        service("a", "x", depends_on=["b"]),
        service("b", "y", depends_on=["c"]),
        service("c", "z", depends_on=["a"]),
    )
    assert issues(data) == ["services[0].depends_on: dependency cycle: a -> b -> c -> a"]


def test_cycle_off_the_entry_service_is_located_where_it_closes() -> None:
    data = catalog(
        service("a", "x", depends_on=["b"]),
        service("b", "y", depends_on=["c"]),
        service("c", "z", depends_on=["b"]),
    )
    assert issues(data) == ["services[1].depends_on: dependency cycle: b -> c -> b"]


def test_a_diamond_of_dependencies_is_not_a_cycle() -> None:
    parse_catalog(
        catalog(
            service("a", "w", depends_on=["b", "c"]),
            service("b", "x", depends_on=["d"]),
            service("c", "y", depends_on=["d"]),
            service("d", "z"),
        )
    )


def test_active_standby_without_primary_is_an_error() -> None:
    data = catalog(service("a", "x", "y", redundancy="active-standby"))
    assert issues(data) == ["services[0].primary: active-standby needs a primary replica"]


def test_active_standby_with_an_unknown_primary_is_an_error() -> None:
    data = catalog(service("a", "x", "y", redundancy="active-standby", primary="z"))
    assert issues(data) == ["services[0].primary: unknown replica 'z'"]


def test_primary_outside_active_standby_is_an_error() -> None:
    data = catalog(service("a", "x", "y", redundancy="active-active", primary="x"))
    assert issues(data) == ["services[0].primary: only an active-standby service has a primary"]


def test_single_with_two_replicas_is_an_error() -> None:
    data = catalog(service("a", "x", "y"))
    assert issues(data) == ["services[0].replicas: redundancy 'single' needs 1 replica, not 2"]


@pytest.mark.parametrize("redundancy", ["active-active", "active-standby"])
def test_redundant_service_with_one_replica_is_an_error(redundancy: str) -> None:
    data = catalog(service("a", "x", redundancy=redundancy, primary="x"))
    assert issues(data) == [
        f"services[0].replicas: redundancy '{redundancy}' needs at least 2 replicas, not 1"
    ]


def test_unknown_redundancy_is_an_error() -> None:
    found = issues(with_change(("services", 0, "redundancy"), "active-passive"))
    assert found == [
        "services[0].redundancy: Input should be 'active-active', 'active-standby' or 'single'"
    ]


def test_two_services_on_one_frontend_are_reported_at_each_use() -> None:
    data = catalog(
        service("a", "x", frontend="127.0.0.1:18200"),
        service("b", "y", frontend="127.0.0.1:18210"),
        service("c", "z", frontend="127.0.0.1:18200"),
    )
    assert issues(data) == [
        "services[0].frontend: duplicate frontend '127.0.0.1:18200'",
        "services[2].frontend: duplicate frontend '127.0.0.1:18200'",
    ]


def test_frontends_are_compared_without_case_in_the_host() -> None:
    data = catalog(service("a", "x", frontend="LB-1:80"), service("b", "y", frontend="lb-1:80"))
    assert issues(data) == [
        "services[0].frontend: duplicate frontend 'lb-1:80'",
        "services[1].frontend: duplicate frontend 'lb-1:80'",
    ]


def test_a_frontend_on_a_replica_address_is_an_error() -> None:
    data = catalog(
        service("a", "x", frontend="127.0.0.1:18500"),
        {"name": "b", "replicas": [replica("y", url="http://127.0.0.1:18500/")]},
    )
    assert issues(data) == [
        "services[0].frontend: frontend '127.0.0.1:18500' is the address of replica 'y'"
    ]


def test_two_replicas_on_one_address_are_reported_at_each_use() -> None:
    data = catalog(
        service("a", "x"),
        {"name": "b", "replicas": [replica("y", url="http://127.0.0.1:18500")]},
        {"name": "c", "replicas": [replica("z", url="redis://127.0.0.1:18500")]},
    )
    assert issues(data) == [
        "services[1].replicas[0].url: duplicate replica address '127.0.0.1:18500'",
        "services[2].replicas[0].url: duplicate replica address '127.0.0.1:18500'",
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("http://127.0.0.1:18500/a", "http://127.0.0.1:18500/b"),  # the path does not matter
        ("http://Gateway.local", "http://gateway.local:80"),  # nor case, nor a default port
        ("https://gateway.local", "http://gateway.local:443"),
    ],
)
def test_replica_addresses_are_compared_as_host_and_port(first: str, second: str) -> None:
    data = catalog(
        service("a", "x", "y", redundancy="active-active"),
        {"name": "b", "replicas": [replica("p", url=first)]},
        {"name": "c", "replicas": [replica("q", url=second)]},
    )
    found = issues(data)
    assert [f.split(": ")[0] for f in found] == [
        "services[1].replicas[0].url",
        "services[2].replicas[0].url",
    ]
    assert all("duplicate replica address" in f for f in found)


def test_replicas_on_one_host_with_different_ports_are_fine() -> None:
    parse_catalog(
        catalog(
            {"name": "a", "replicas": [replica("x", url="http://127.0.0.1:1")]},
            {"name": "b", "replicas": [replica("y", url="http://127.0.0.1:2")]},
            {"name": "c", "replicas": [replica("z", url="http://127.0.0.2:1")]},
        )
    )


def test_two_replicas_with_one_process_are_reported_at_each_use() -> None:
    data = catalog(
        {"name": "a", "replicas": [replica("x", process="api")]},
        {"name": "b", "replicas": [replica("y", process="worker")]},
        {"name": "c", "replicas": [replica("z", process="api")]},
    )
    assert issues(data) == [
        "services[0].replicas[0].process: duplicate process 'api'",
        "services[2].replicas[0].process: duplicate process 'api'",
    ]


def test_a_check_on_the_replica_own_address_is_fine() -> None:
    checks = [
        {"type": "http", "url": "http://127.0.0.1:18500/ready"},
        {"type": "tcp", "host": "127.0.0.1", "port": 18500},
    ]
    own = replica("x", url="http://127.0.0.1:18500", checks=checks)
    parse_catalog(catalog({"name": "a", "replicas": [own]}))


# --- several problems at once --------------------------------------------------------------------


def test_several_schema_errors_are_all_reported() -> None:
    data = catalog(
        service("a", "x", probe={"interval_ms": 50}),
        {"name": "b", "replicas": [replica("y", url="nope", colour="red")]},
        service("c", "z", frontend="nope"),
    )
    found = issues(data)
    assert found[:3] == [
        "services[0].probe.interval_ms: Input should be greater than or equal to 100",
        "services[1].replicas[0].url: Input should be a valid URL, relative URL without a base",
        "services[1].replicas[0].colour: Extra inputs are not permitted",
    ]
    assert found[3].startswith("services[2].frontend: String should match pattern")
    assert len(found) == 4


def test_several_cross_reference_errors_are_all_reported(tmp_path: Path) -> None:
    text = (
        "services:\n"
        "  - name: a\n"
        "    depends_on: [nope, b]\n"
        "    redundancy: active-standby\n"
        "    replicas:\n"
        "      - {name: x, region: ldn, url: 'http://127.0.0.1:1'}\n"
        "      - {name: y, region: nyc, url: 'http://127.0.0.1:2'}\n"
        "  - name: b\n"
        "    depends_on: [a]\n"
        "    replicas:\n"
        "      - {name: x, region: ldn, url: 'http://127.0.0.1:3'}\n"
    )
    found = [str(i) for i in load_issues(tmp_path / "c.yaml", text)]
    assert found == [
        "services[0].replicas[0].name: duplicate replica 'x'",
        "services[0].depends_on[0]: unknown service 'nope'",
        "services[0].primary: active-standby needs a primary replica",
        "services[1].replicas[0].name: duplicate replica 'x'",
        "services[0].depends_on: dependency cycle: a -> b -> a",
    ]


# --- structural and semantic problems in one run --------------------------------------------------


def test_schema_and_cross_reference_errors_are_reported_in_one_run() -> None:
    # structural (pydantic's) issues first, then the cross-reference ones in catalog order
    data = catalog(
        service("a", "x"),
        {"name": "b", "depends_on": ["nope"], "replicas": [replica("x", colour="red")]},
    )
    assert issues(data) == [
        "services[1].replicas[0].colour: Extra inputs are not permitted",
        "services[0].replicas[0].name: duplicate replica 'x'",
        "services[1].replicas[0].name: duplicate replica 'x'",
        "services[1].depends_on[0]: unknown service 'nope'",
    ]


def test_a_service_whose_entry_is_invalid_is_still_a_known_dependency() -> None:
    data = catalog(
        service("a", "x", probe={"interval_ms": 1}),
        service("b", "y", depends_on=["a"]),
    )
    assert issues(data) == [
        "services[0].probe.interval_ms: Input should be greater than or equal to 100"
    ]


def test_a_cycle_through_an_invalid_entry_is_still_a_cycle() -> None:
    data = catalog(
        service("a", "x", depends_on=["b"], colour="red"),
        service("b", "y", depends_on=["a"]),
    )
    assert issues(data) == [
        "services[0].colour: Extra inputs are not permitted",
        "services[0].depends_on: dependency cycle: a -> b -> a",
    ]


@pytest.mark.parametrize("entry", [{"name": 7, "replicas": []}, {"replicas": []}, "market-data"])
def test_no_dependency_is_unknown_while_a_service_has_no_readable_name(entry: Any) -> None:
    # the nameless entry may be the very service the dependency means; the other checks run
    data = catalog(
        entry,
        service("a", "x", depends_on=["nope", "a"]),
        service("b", "x"),
    )
    found = issues(data)
    assert "services[1].depends_on[0]: unknown service 'nope'" not in found
    assert found[-3:] == [
        "services[1].replicas[0].name: duplicate replica 'x'",
        "services[1].depends_on[1]: a service cannot need itself",
        "services[2].replicas[0].name: duplicate replica 'x'",
    ]


def test_values_of_the_wrong_shape_are_left_to_the_schema() -> None:
    data = catalog(
        {"name": "a", "depends_on": "b", "replicas": {"name": "x"}},
        {"name": ["b"], "replicas": [{"name": 5, "process": ["p"], "url": 1}], "frontend": 2},
    )
    assert cross_check(data) == []  # every problem here is pydantic's to name
    assert len(issues(data)) == 8


def test_redundancy_rules_wait_for_a_valid_redundancy() -> None:
    data = catalog(service("a", "x", redundancy="active-passive", primary="nope"))
    assert issues(data) == [
        "services[0].redundancy: Input should be 'active-active', 'active-standby' or 'single'"
    ]


def test_redundancy_rules_count_every_replica_entry_even_an_invalid_one() -> None:
    data = catalog({"name": "a", "replicas": [replica("x"), replica("y", colour="red")]})
    assert issues(data) == [
        "services[0].replicas[1].colour: Extra inputs are not permitted",
        "services[0].replicas: redundancy 'single' needs 1 replica, not 2",
    ]


def test_no_replicas_is_reported_once_by_the_schema() -> None:
    data = catalog({"name": "a", "replicas": []}, service("b", "y"))
    assert issues(data) == [
        "services[0].replicas: Tuple should have at least 1 item after validation, not 0"
    ]


def test_an_unknown_primary_waits_until_every_replica_has_a_name() -> None:
    unnamed = {"region": "ldn", "url": "http://127.0.0.1:1"}
    data = catalog(
        {
            "name": "a",
            "redundancy": "active-standby",
            "primary": "z",
            "replicas": [replica("x"), unnamed],
        }
    )
    assert issues(data) == ["services[0].replicas[1].name: Field required"]


def test_an_unknown_primary_is_reported_beside_a_bad_replica_url() -> None:
    data = catalog(
        service("a", "x", "y", redundancy="active-standby", primary="z"),
    )
    data["services"][0]["replicas"][1]["url"] = "nope"
    assert issues(data) == [
        "services[0].replicas[1].url: Input should be a valid URL, relative URL without a base",
        "services[0].primary: unknown replica 'z'",
    ]


def test_cross_check_of_a_valid_catalog_is_empty() -> None:
    assert cross_check(load_catalog(DEFAULT_CATALOG)) == []


# --- locations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        ((), ""),
        (("services",), "services"),
        (("services", 2, "replicas", 0, "url"), "services[2].replicas[0].url"),
        (
            ("services", 0, "replicas", 1, "checks", 0, "redis", "port"),
            ("services[0].replicas[1].checks[0].port"),
        ),
        (("services", 0, "replicas", 1, "redis"), "services[0].replicas[1].redis"),
    ],
)
def test_format_location(loc: tuple[int | str, ...], expected: str) -> None:
    assert format_location(loc) == expected

"""Property tests of the catalog loader: no input crashes it, and its two views agree.

Whatever the YAML holds, loading ends in a ``Catalog`` or a ``CatalogError`` whose issues are
each located once; the semantic checks read raw data and a validated catalog alike.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drc.catalog import Catalog
from drc.catalog_loader import cross_check, load_catalog, parse_catalog
from drc.errors import CatalogError

PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# What a YAML document can hold (SafeLoader): scalars, dates, bytes, lists, mappings, sets.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=4)
    | st.dates()
    | st.datetimes(timezones=st.just(dt.UTC))
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers(), max_size=3).map(set)
    ),
    max_leaves=20,
)

# Catalog-shaped data, so that the walker's every branch is reached: the right keys with
# values from small pools (names and addresses collide often), and in ``catalogs`` also junk.
NAMES = ["a", "b", "c", "x", "y"]
URLS = ["http://127.0.0.1:1", "http://127.0.0.1:2/", "https://H", "redis://127.0.0.1:1"]
FRONTENDS = ["127.0.0.1:1", "127.0.0.1:9", "LB:80", "lb:80"]
REDUNDANCIES = ["single", "active-active", "active-standby"]


def catalog_shaped(with_junk: bool) -> st.SearchStrategy[dict[str, Any]]:
    def pool(values: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
        good = st.sampled_from(values)
        return st.one_of(good, good, good, st.sampled_from(bad) | junk) if with_junk else good

    def seq(items: st.SearchStrategy[Any], min_size: int = 0) -> st.SearchStrategy[Any]:
        good = st.lists(items, min_size=min_size, max_size=3)
        return st.one_of(good, good, good, junk) if with_junk else good

    names = pool(NAMES, ["Bad_Name", ""])
    replicas = st.fixed_dictionaries(
        {"name": names, "region": st.just("ldn"), "url": pool(URLS, ["nope", "http://h:x"])},
        optional={"process": names, **({"colour": st.just("red")} if with_junk else {})},
    )
    services = st.fixed_dictionaries(
        {"name": names, "replicas": seq(replicas, min_size=1)},
        optional={
            "depends_on": seq(names),
            "redundancy": pool(REDUNDANCIES, ["active-passive"]),
            "primary": names,
            "frontend": pool(FRONTENDS, ["nope"]),
        },
    )
    return st.fixed_dictionaries(
        {"services": seq(services, min_size=1)},
        optional={"version": st.sampled_from([1, 2]), "servics": junk} if with_junk else {},
    )


catalogs = catalog_shaped(with_junk=True)
clean_catalogs = catalog_shaped(with_junk=False)


def outcome(data: Any) -> Catalog | CatalogError:
    try:
        return parse_catalog(data, "prop.yaml")
    except CatalogError as exc:
        return exc


def assert_well_formed(result: Catalog | CatalogError) -> None:
    if isinstance(result, Catalog):
        assert cross_check(result) == []  # what loads passed every semantic check
        return
    assert result.issues, "an error names at least one problem"
    assert len(set(result.issues)) == len(result.issues), "no problem is named twice"
    for issue in result.issues:
        assert isinstance(issue.location, str) and issue.message


@PROPERTY
@given(junk)
def test_arbitrary_data_ends_in_a_catalog_or_a_located_error(data: Any) -> None:
    assert_well_formed(outcome(data))


@PROPERTY
@given(catalogs)
def test_catalog_shaped_data_ends_in_a_catalog_or_a_located_error(data: dict[str, Any]) -> None:
    assert_well_formed(outcome(data))


@PROPERTY
@given(clean_catalogs)
def test_the_raw_walk_agrees_with_the_validated_catalog(data: dict[str, Any]) -> None:
    # the semantic checks give the same answer on the YAML data and on the model built from it
    parsed = Catalog.model_validate(data)  # clean: only semantic problems, if any
    assert cross_check(data) == cross_check(parsed)


@PROPERTY
@given(catalogs)
def test_semantic_issues_follow_every_structural_one(data: dict[str, Any]) -> None:
    result = outcome(data)
    if isinstance(result, CatalogError):
        semantic = cross_check(data)
        assert result.issues[len(result.issues) - len(semantic) :] == semantic


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prop") / "catalog.yaml"


@PROPERTY
@given(st.text(max_size=200))
def test_any_text_ends_in_a_catalog_or_a_located_error(catalog_file: Path, text: str) -> None:
    catalog_file.write_text(text, encoding="utf-8")
    try:
        load_catalog(catalog_file)
    except CatalogError as exc:
        assert exc.issues


@PROPERTY
@given(catalogs | junk)
def test_any_yaml_document_ends_in_a_catalog_or_a_located_error(
    catalog_file: Path, data: Any
) -> None:
    catalog_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        load_catalog(catalog_file)
    except CatalogError as exc:
        assert_well_formed(exc)


@pytest.mark.parametrize(
    "text",
    [
        "services:\n  - name: 2024-13-01\n",  # looks like a date, is not one
        "services: !!int many\n",
        "services: !!bool maybe\n",
        "services: !!timestamp soon\n",
        "? [services]\n: x\n",  # a list as a key
        "? {a: 1}\n: x\n",
    ],
)
def test_yaml_that_python_cannot_build_is_invalid_yaml_with_a_line(
    catalog_file: Path, text: str
) -> None:
    catalog_file.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog_file)
    [issue] = caught.value.issues
    assert issue.location.startswith("line ")
    assert issue.message.startswith("invalid YAML: ")


def test_yaml_merge_keys_are_not_duplicates(catalog_file: Path) -> None:
    catalog_file.write_text(
        "services:\n"
        "  - name: a\n"
        "    probe: &probe {interval_ms: 250, timeout_ms: 200}\n"
        "    replicas: [{name: x, region: ldn, url: 'http://127.0.0.1:1'}]\n"
        "  - name: b\n"
        "    probe: {<<: *probe, timeout_ms: 100}  # a merged key overridden, not repeated\n"
        "    replicas: [{name: y, region: ldn, url: 'http://127.0.0.1:2'}]\n",
        encoding="utf-8",
    )
    probe = load_catalog(catalog_file).services[1].probe
    assert (probe.interval_ms, probe.timeout_ms) == (250, 100)

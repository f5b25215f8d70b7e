"""Load a catalog file into a validated ``Catalog``, or fail with every located problem."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from drc.catalog import Catalog, Redundancy
from drc.errors import CatalogError, CatalogIssue
from drc.yamlio import UniqueKeyLoader, format_location, is_tuple_echo


def parse_catalog(data: Any, source: str = "<catalog>") -> Catalog:
    """Validate already-parsed YAML data; raise ``CatalogError`` listing every problem."""
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        issues = [
            CatalogIssue(format_location(e["loc"]), e["msg"])
            for e in exc.errors()
            if not is_tuple_echo(e)
        ]
        raise CatalogError(source, issues) from None
    issues = cross_check(catalog)
    if issues:
        raise CatalogError(source, issues)
    return catalog


def load_catalog(path: Path | str) -> Catalog:
    """Read and validate the catalog at ``path``; raise ``CatalogError`` naming every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(source, [CatalogIssue("", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(source, [CatalogIssue(where, f"invalid YAML: {problem}")]) from None
    if not isinstance(data, dict):
        raise CatalogError(source, [CatalogIssue("", "the catalog must be a YAML mapping")])
    return parse_catalog(data, source)


def cross_check(catalog: Catalog) -> list[CatalogIssue]:
    """Problems that span several entries: duplicates, unknown references, dependency cycles."""
    issues: list[CatalogIssue] = []
    names = Counter(s.name for s in catalog.services)
    replica_names = Counter(r.name for s in catalog.services for r in s.replicas)
    for i, service in enumerate(catalog.services):
        at = f"services[{i}]"
        if names[service.name] > 1:
            issues.append(CatalogIssue(f"{at}.name", f"duplicate service {service.name!r}"))
        for j, replica in enumerate(service.replicas):
            if replica_names[replica.name] > 1:
                issues.append(
                    CatalogIssue(f"{at}.replicas[{j}].name", f"duplicate replica {replica.name!r}")
                )
        for k, dep in enumerate(service.depends_on):
            if dep not in names:
                issues.append(CatalogIssue(f"{at}.depends_on[{k}]", f"unknown service {dep!r}"))
            elif dep == service.name:
                issues.append(CatalogIssue(f"{at}.depends_on[{k}]", "a service cannot need itself"))
        issues.extend(_redundancy_issues(at, service))
    issues.extend(_cycle_issues(catalog))
    return issues


def _redundancy_issues(at: str, service: Any) -> list[CatalogIssue]:
    count = len(service.replicas)
    if service.redundancy is Redundancy.SINGLE and count != 1:
        return [CatalogIssue(f"{at}.replicas", f"redundancy 'single' needs 1 replica, not {count}")]
    if service.redundancy is Redundancy.SINGLE:
        return []
    if count < 2:
        return [
            CatalogIssue(
                f"{at}.replicas",
                f"redundancy {service.redundancy.value!r} needs at least 2 replicas, not {count}",
            )
        ]
    if service.redundancy is Redundancy.ACTIVE_STANDBY:
        if service.primary is None:
            return [CatalogIssue(f"{at}.primary", "active-standby needs a primary replica")]
        if service.replica(service.primary) is None:
            return [CatalogIssue(f"{at}.primary", f"unknown replica {service.primary!r}")]
    elif service.primary is not None:
        return [CatalogIssue(f"{at}.primary", "only an active-standby service has a primary")]
    return []


def _cycle_issues(catalog: Catalog) -> list[CatalogIssue]:
    graph = {s.name: [d for d in s.depends_on if d != s.name] for s in catalog.services}
    index = {s.name: i for i, s in enumerate(catalog.services)}
    done: set[str] = set()
    issues: list[CatalogIssue] = []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name) :] + [name]
            issues.append(
                CatalogIssue(
                    f"services[{index[name]}].depends_on",
                    "dependency cycle: " + " -> ".join(cycle),
                )
            )
            return
        if name in done or name not in graph:
            return
        for dep in graph[name]:
            visit(dep, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])
    return issues

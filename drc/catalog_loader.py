"""Load a catalog file into a validated ``Catalog``, or fail with every located problem.

Two kinds of problem are reported together, in one run:

- structural ones, which pydantic finds entry by entry (unknown keys, types, ranges);
- semantic ones, which span several entries (duplicates, references, dependency cycles) and
  which ``cross_check`` finds on the raw YAML data, so that a typo in one replica does not
  hide a duplicate in another.

Structural issues come first, in pydantic's order, then semantic ones, in catalog order with
dependency cycles last; an issue is listed once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from drc.catalog import Catalog, Redundancy
from drc.errors import CatalogError, CatalogIssue
from drc.yamlio import YamlReadError, format_location, is_tuple_echo, read_yaml


def parse_catalog(data: Any, source: str = "<catalog>") -> Catalog:
    """Validate already-parsed YAML data; raise ``CatalogError`` listing every problem.

    The semantic checks run even when pydantic refuses part of the data, so one call names
    every problem: structural ones first, then semantic ones, never the same one twice.
    """
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        structural = [
            CatalogIssue(format_location(e["loc"]), e["msg"])
            for e in exc.errors()
            if not is_tuple_echo(e)
        ]
        raise CatalogError(source, _unique([*structural, *cross_check(data)])) from None
    issues = cross_check(catalog)
    if issues:
        raise CatalogError(source, issues)
    return catalog


def load_catalog(path: Path | str) -> Catalog:
    """Read and validate the catalog at ``path``; raise ``CatalogError`` naming every problem."""
    source = str(path)
    try:
        data = read_yaml(path)
    except YamlReadError as exc:
        raise CatalogError(source, [exc.issue]) from None
    if not isinstance(data, dict):
        raise CatalogError(source, [CatalogIssue("", "the catalog must be a YAML mapping")])
    return parse_catalog(data, source)


def cross_check(data: Catalog | Any) -> list[CatalogIssue]:
    """Problems that span several entries: duplicates, unknown references, dependency cycles.

    ``data`` is a validated ``Catalog`` or raw YAML data that pydantic may have refused in
    part. A value of the wrong shape (a name that is not a string, replicas that are not a
    list) is pydantic's to report and is skipped here; a check that needs the whole picture
    ("is this a known service?") runs only when every entry it depends on can be read.
    """
    view = _view(data.model_dump(mode="json") if isinstance(data, Catalog) else data)
    usage = _Usage.of(view)
    issues: list[CatalogIssue] = []
    for service in view.services:
        if service.name is not None and usage.services[service.name] > 1:
            issues.append(CatalogIssue(f"{service.at}.name", f"duplicate service {service.name!r}"))
        issues.extend(_frontend_issues(service, usage))
        for replica in service.replicas:
            issues.extend(_replica_issues(replica, usage))
        issues.extend(_dependency_issues(service, usage.services if view.all_named else None))
        issues.extend(_redundancy_issues(service))
    issues.extend(_cycle_issues(view))
    return issues


# --- a normalized view of the raw data -------------------------------------------------------
# Only what the semantic checks read, each value either usable or None, so that the checks
# never have to ask what shape the YAML had.

_FRONTEND = re.compile(r"([A-Za-z0-9.-]+):([0-9]{1,5})")  # Service.frontend's pattern
_REDUNDANCIES = {r.value: r for r in Redundancy}
_DEFAULT_PORTS = {"http": 80, "https": 443}  # a redis:// url must name its port


@dataclass(frozen=True)
class _ReplicaView:
    at: str
    name: str | None
    address: str | None
    """``host:port`` the replica listens on, whatever the scheme."""
    process: str | None

    @property
    def label(self) -> str:
        return f"replica {self.name!r}" if self.name is not None else self.at


@dataclass(frozen=True)
class _ServiceView:
    index: int
    name: str | None
    depends_on: tuple[tuple[int, str], ...]
    """(position, name) of every dependency that is a string."""
    redundancy: Redundancy | None
    primary: str | None
    has_primary: bool
    """A primary was given, usable or not (a number, say)."""
    frontend: str | None
    replicas: tuple[_ReplicaView, ...]
    replica_count: int | None
    """How many entries ``replicas`` has; None when it is not a list."""

    @property
    def at(self) -> str:
        return f"services[{self.index}]"

    @property
    def replica_names(self) -> set[str] | None:
        """Every replica's name, or None if one entry has none that can be read."""
        names = {r.name for r in self.replicas if r.name is not None}
        named = sum(r.name is not None for r in self.replicas)
        return names if named == self.replica_count else None


@dataclass(frozen=True)
class _CatalogView:
    services: tuple[_ServiceView, ...]
    all_named: bool
    """Every entry of ``services`` has a readable name, so an unknown name is really unknown."""


def _view(data: Any) -> _CatalogView:
    entries = _items(data.get("services")) if isinstance(data, Mapping) else []
    services = tuple(
        _service_view(i, entry) for i, entry in enumerate(entries) if isinstance(entry, Mapping)
    )
    named = sum(s.name is not None for s in services)
    return _CatalogView(services, all_named=named == len(entries))


def _service_view(index: int, raw: Mapping[Any, Any]) -> _ServiceView:
    at = f"services[{index}]"
    replicas = raw.get("replicas")
    entries = _items(replicas)
    primary = raw.get("primary")
    return _ServiceView(
        index=index,
        name=_str(raw.get("name")),
        depends_on=tuple(
            (k, d) for k, d in enumerate(_items(raw.get("depends_on"))) if isinstance(d, str)
        ),
        redundancy=_redundancy(raw.get("redundancy", Redundancy.SINGLE.value)),
        primary=_str(primary),
        has_primary=primary is not None,
        frontend=_frontend(raw.get("frontend")),
        replicas=tuple(
            _replica_view(f"{at}.replicas[{j}]", entry)
            for j, entry in enumerate(entries)
            if isinstance(entry, Mapping)
        ),
        replica_count=len(entries) if isinstance(replicas, list | tuple) else None,
    )


def _replica_view(at: str, raw: Mapping[Any, Any]) -> _ReplicaView:
    return _ReplicaView(
        at=at,
        name=_str(raw.get("name")),
        address=_address(raw.get("url")),
        process=_str(raw.get("process")) or None,
    )


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _redundancy(value: Any) -> Redundancy | None:
    return _REDUNDANCIES.get(value) if isinstance(value, str) else None


def _frontend(value: Any) -> str | None:
    match = _FRONTEND.fullmatch(value) if isinstance(value, str) else None
    return f"{match[1].lower()}:{int(match[2])}" if match else None


def _address(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number, or out of range: pydantic says so
        return None
    if not parts.hostname or port is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def _unique(issues: Iterable[CatalogIssue]) -> list[CatalogIssue]:
    return list(dict.fromkeys(issues))


# --- the checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Usage:
    """How often each name and address is used across the whole catalog."""

    services: Counter[str]
    replicas: Counter[str]
    addresses: Counter[str]
    processes: Counter[str]
    frontends: Counter[str]
    listeners: dict[str, _ReplicaView]
    """The first replica listening on each address."""

    @classmethod
    def of(cls, view: _CatalogView) -> _Usage:
        replicas = [r for s in view.services for r in s.replicas]
        return cls(
            services=Counter(s.name for s in view.services if s.name is not None),
            replicas=Counter(r.name for r in replicas if r.name is not None),
            addresses=Counter(r.address for r in replicas if r.address is not None),
            processes=Counter(r.process for r in replicas if r.process is not None),
            frontends=Counter(s.frontend for s in view.services if s.frontend is not None),
            listeners={r.address: r for r in reversed(replicas) if r.address is not None},
        )


def _frontend_issues(service: _ServiceView, usage: _Usage) -> list[CatalogIssue]:
    frontend, at = service.frontend, f"{service.at}.frontend"
    if frontend is None:
        return []
    issues = []
    if usage.frontends[frontend] > 1:
        issues.append(CatalogIssue(at, f"duplicate frontend {frontend!r}"))
    if frontend in usage.listeners:
        # the traffic manager cannot bind where a replica already listens
        owner = usage.listeners[frontend].label
        issues.append(CatalogIssue(at, f"frontend {frontend!r} is the address of {owner}"))
    return issues


def _replica_issues(replica: _ReplicaView, usage: _Usage) -> list[CatalogIssue]:
    issues = []
    if replica.name is not None and usage.replicas[replica.name] > 1:
        issues.append(CatalogIssue(f"{replica.at}.name", f"duplicate replica {replica.name!r}"))
    if replica.address is not None and usage.addresses[replica.address] > 1:
        # two replicas on one host:port are one server: probing or restarting one hits both
        message = f"duplicate replica address {replica.address!r}"
        issues.append(CatalogIssue(f"{replica.at}.url", message))
    if replica.process is not None and usage.processes[replica.process] > 1:
        # one process-control program: restarting one replica would restart the other
        message = f"duplicate process {replica.process!r}"
        issues.append(CatalogIssue(f"{replica.at}.process", message))
    return issues


def _dependency_issues(service: _ServiceView, known: Counter[str] | None) -> list[CatalogIssue]:
    """``known`` is None when a service's name cannot be read: then no name is "unknown"."""
    issues = []
    for k, dep in service.depends_on:
        at = f"{service.at}.depends_on[{k}]"
        if dep == service.name:
            issues.append(CatalogIssue(at, "a service cannot need itself"))
        elif known is not None and dep not in known:
            issues.append(CatalogIssue(at, f"unknown service {dep!r}"))
    return issues


def _redundancy_issues(service: _ServiceView) -> list[CatalogIssue]:
    at, redundancy, count = service.at, service.redundancy, service.replica_count
    if redundancy is None or not count:  # a bad value, or no replicas: pydantic reports it
        return []
    if redundancy is Redundancy.SINGLE and count != 1:
        return [CatalogIssue(f"{at}.replicas", f"redundancy 'single' needs 1 replica, not {count}")]
    if redundancy is Redundancy.SINGLE:
        return []
    if count < 2:
        return [
            CatalogIssue(
                f"{at}.replicas",
                f"redundancy {redundancy.value!r} needs at least 2 replicas, not {count}",
            )
        ]
    if redundancy is not Redundancy.ACTIVE_STANDBY:
        if service.has_primary:
            return [CatalogIssue(f"{at}.primary", "only an active-standby service has a primary")]
        return []
    return _primary_issues(service)


def _primary_issues(service: _ServiceView) -> list[CatalogIssue]:
    at, primary, names = f"{service.at}.primary", service.primary, service.replica_names
    if not service.has_primary:
        return [CatalogIssue(at, "active-standby needs a primary replica")]
    if primary is not None and names is not None and primary not in names:
        return [CatalogIssue(at, f"unknown replica {primary!r}")]
    return []


def _cycle_issues(view: _CatalogView) -> list[CatalogIssue]:
    # With duplicate names the last entry wins, as it always has; the duplicate is reported.
    graph = {
        s.name: [d for _, d in s.depends_on if d != s.name]
        for s in view.services
        if s.name is not None
    }
    index = {s.name: s.index for s in view.services if s.name is not None}
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

"""Chaos experiments as data: YAML under ``runbooks/chaos/``, validated like the catalog.

The format follows Chaos Toolkit's names where they fit (``steady-state-hypothesis`` with
``probes`` and their ``tolerance``, ``method``, ``rollbacks``) and adds what drc needs: a
recovery objective, and a blast radius (``select: all | count(n) | percent(p)`` over each
fault's candidates, drawn with a seed the run records; never a service left without a
healthy redundant replica unless ``allow-unprotected``). Faults are drc's own
(``drc.chaos.FaultKind``), each with an undo; a rollback is the undo of a fault, run as a saga
compensation whatever happens.

``load_experiment`` reads and validates one file against the catalog and reports every
problem with its location in one pass; ``candidates`` and ``select`` are pure, so the
``ChaosExperiment`` workflow runs them itself.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from drc.catalog import NAME_PATTERN, Catalog, Redundancy, Service, StrictModel
from drc.chaos import (
    HTTP_ONLY,
    NEEDS_PROCESS,
    REDIS_REPLICA_ONLY,
    UNDO,
    FaultKind,
    FaultTarget,
    SteadyProbe,
)
from drc.errors import CatalogIssue, ChaosError
from drc.yamlio import YamlReadError, format_location, read_yaml

CHAOS_DIR = Path(__file__).parent / "chaos"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
_SELECT = re.compile(r"^(all|count\(([1-9][0-9]{0,3})\)|percent\(([1-9][0-9]?|100)\))$")


class _Model(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Tolerance(_Model):
    """What a probe must see to hold: an HTTP status range, or a bound on a measured value."""

    status: tuple[int, int] = Field((200, 299), description="Inclusive HTTP status range.")
    below_ms: float | None = Field(
        None, gt=0, alias="below-ms", description="For sync-lag: p99 lag below this."
    )
    samples: int = Field(
        20,
        ge=1,
        le=1000,
        description="For sync-lag: the p99 is over this many latest samples (an earlier "
        "failover's lags must not hold the probe down for minutes).",
    )


class Probe(_Model):
    """One steady-state probe (Chaos Toolkit: a probe with a tolerance)."""

    name: Name
    type: Literal["http", "no-incident", "sync-lag", "service-healthy"]
    service: Name | None = None
    path: str = Field("/health", pattern=r"^/[A-Za-z0-9/_.-]*$")
    method: Literal["GET", "POST"] = "GET"
    body: dict[str, str | int | float] | None = Field(
        None, description="For POST: a JSON body (a synthetic transaction, e.g. an order)."
    )
    tolerance: Tolerance = Tolerance()


class SteadyStateHypothesis(_Model):
    """What must hold before the faults and again after the rollbacks."""

    title: str
    probes: tuple[Probe, ...] = Field(min_length=1)


class Target(_Model):
    """Whom a fault hits: replicas of a service (``replica`` picks which), or a region."""

    service: Name | None = None
    replica: str = Field("any", description="primary | standby | any | a replica's name.")
    region: Name | None = None

    @field_validator("replica")
    @classmethod
    def _replica(cls, value: str) -> str:
        if value in ("primary", "standby", "any") or re.match(NAME_PATTERN, value):
            return value
        raise ValueError(f"replica {value!r} is not primary, standby, any or a replica name")


class Fault(_Model):
    """One fault of the method: what, on whom, for how long, how many."""

    name: Name
    fault: FaultKind
    target: Target
    duration_s: float = Field(
        0, ge=0, le=600, alias="duration-s", description="How long before it is undone (0: now)."
    )
    latency_ms: float = Field(0, ge=0, le=60_000, alias="latency-ms")
    error_share: float = Field(0, ge=0, le=1, alias="error-share")
    select: str = Field("count(1)", description="all | count(n) | percent(p) of the candidates.")

    @field_validator("select")
    @classmethod
    def _selection(cls, value: str) -> str:
        if not _SELECT.match(value):
            raise ValueError(f"select {value!r} is not all, count(n) or percent(p)")
        return value


class RecoveryObjective(_Model):
    """What the run is judged by, measured from the first injection."""

    detected_within_s: float = Field(gt=0, alias="detected-within-s")
    recovered_within_s: float = Field(gt=0, alias="recovered-within-s")
    recovered_by: Literal["drc", "rollback"] = Field(
        "drc",
        alias="recovered-by",
        description="drc: drc repairs while the fault holds (measured from the injection); "
        "rollback: the fault only ends with its undo (measured from the rollback).",
    )
    probes: tuple[Name, ...] | None = Field(
        None,
        description="The hypothesis' probes that say the service is back (default: all but "
        "no-incident; an incident stays open until the rollbacks are done).",
    )


class BlastRadius(_Model):
    """Limits on what the experiment may hit."""

    allow_unprotected: bool = Field(
        False,
        alias="allow-unprotected",
        description="Also hit a service left without a healthy replica elsewhere.",
    )


class Experiment(_Model):
    """A chaos experiment: hypothesis, method, objective, blast radius."""

    title: str
    description: str = ""
    steady_state_hypothesis: SteadyStateHypothesis = Field(alias="steady-state-hypothesis")
    method: tuple[Fault, ...] = Field(min_length=1)
    recovery_objective: RecoveryObjective = Field(alias="recovery-objective")
    blast_radius: BlastRadius = Field(BlastRadius(), alias="blast-radius")
    tags: tuple[str, ...] = ()


@dataclass
class Prepared:
    """An experiment ready to run: validated, with what the monitors say now."""

    experiment: Experiment
    catalog: Catalog
    primaries: dict[str, str] = field(default_factory=dict)
    """Service -> its current primary, as its monitor sees it."""
    healthy: dict[str, list[str]] = field(default_factory=dict)
    """Service -> its replicas that are healthy now."""
    others_running: list[str] = field(default_factory=list)
    """Workflow ids of other chaos experiments running now (one at a time per deployment)."""


def steady_probes(experiment: Experiment, catalog: Catalog) -> list[SteadyProbe]:
    """The hypothesis' probes, resolved against ``catalog`` (front end URLs filled in)."""
    return [_steady(p, catalog) for p in experiment.steady_state_hypothesis.probes]


def recovery_probes(experiment: Experiment, catalog: Catalog) -> list[SteadyProbe]:
    """The probes whose holding says the fault is recovered (``recovery-objective.probes``)."""
    named = experiment.recovery_objective.probes
    return [
        p
        for p in steady_probes(experiment, catalog)
        if (p.name in named if named is not None else p.type != "no-incident")
    ]


def _steady(probe: Probe, catalog: Catalog) -> SteadyProbe:
    service = catalog.service(probe.service) if probe.service else None
    frontend = service.frontend if service is not None else None
    url = f"http://{frontend}{probe.path}" if probe.type == "http" and frontend else None
    low, high = probe.tolerance.status
    body = json.dumps(probe.body) if probe.body is not None else None
    return SteadyProbe(
        probe.name,
        probe.type,
        probe.service,
        url,
        low,
        high,
        probe.tolerance.below_ms,
        probe.method,
        body,
        probe.tolerance.samples,
    )


def load_experiment(path: Path | str, catalog: Catalog) -> Experiment:
    """Read and validate the experiment at ``path`` against ``catalog``.

    Raises ``ChaosError`` listing every problem, each located (``method[0].target.service``).
    """
    source = str(path)
    try:
        data = read_yaml(path)
    except YamlReadError as exc:
        raise ChaosError(source, [exc.issue]) from None
    return parse_experiment(data, catalog, source)


def parse_experiment(data: Any, catalog: Catalog, source: str = "<experiment>") -> Experiment:
    """Validate parsed YAML into an ``Experiment``; ``ChaosError`` names every problem."""
    if not isinstance(data, dict):
        raise ChaosError(source, [CatalogIssue("", "an experiment must be a YAML mapping")])
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        issues = [CatalogIssue(format_location(e["loc"]), e["msg"]) for e in exc.errors()]
        raise ChaosError(source, issues + _raw_target_issues(data, catalog)) from None
    issues = check_experiment(experiment, catalog)
    if issues:
        raise ChaosError(source, issues)
    return experiment


def _raw_target_issues(data: dict[str, Any], catalog: Catalog) -> list[CatalogIssue]:
    """Unknown services and regions in the targets pydantic could still read.

    So that one run names them beside the shape errors, as ``drc validate`` does.
    """
    method = data.get("method")
    issues: list[CatalogIssue] = []
    regions = {r.region for s in catalog.services for r in s.replicas}
    for i, entry in enumerate(method if isinstance(method, list) else []):
        target = entry.get("target") if isinstance(entry, dict) else None
        if not isinstance(target, dict):
            continue
        service, region = target.get("service"), target.get("region")
        if isinstance(service, str) and catalog.service(service) is None:
            why = f"unknown service {service!r}"
            issues.append(CatalogIssue(f"method[{i}].target.service", why))
        if isinstance(region, str) and region not in regions:
            why = f"unknown region {region!r}"
            issues.append(CatalogIssue(f"method[{i}].target.region", why))
    return issues


def experiment_path(name: str, folder: Path = CHAOS_DIR) -> Path:
    """``runbooks/chaos/<name>.yaml``; ``ChaosError`` for a name that is not a plain name."""
    if not re.match(NAME_PATTERN, name):
        raise ChaosError(name, [CatalogIssue("", f"experiment {name!r} is not a valid name")])
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(experiment_names(folder)) or "none"
        raise ChaosError(name, [CatalogIssue("", f"no experiment {name!r} (known: {known})")])
    return path


def experiment_names(folder: Path = CHAOS_DIR) -> list[str]:
    """Every experiment shipped in ``folder``, by file name."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_experiment(experiment: Experiment, catalog: Catalog) -> list[CatalogIssue]:
    """Every problem pydantic cannot see: unknown names, faults that could not be undone."""
    issues: list[CatalogIssue] = []
    for i, probe in enumerate(experiment.steady_state_hypothesis.probes):
        issues += _probe_issues(f"steady-state-hypothesis.probes[{i}]", probe, catalog)
    known = [p.name for p in experiment.steady_state_hypothesis.probes]
    for i, name in enumerate(experiment.recovery_objective.probes or ()):
        if name not in known:
            why = f"no probe {name!r} in the hypothesis (known: {', '.join(known)})"
            issues.append(CatalogIssue(f"recovery-objective.probes[{i}]", why))
    names = [f.name for f in experiment.method]
    for i, fault in enumerate(experiment.method):
        at = f"method[{i}]"
        if names.count(fault.name) > 1:
            issues.append(CatalogIssue(f"{at}.name", f"duplicate fault name {fault.name!r}"))
        issues += _fault_issues(at, fault, catalog)
    return issues


def candidates(fault: Fault, catalog: Catalog, primaries: dict[str, str]) -> list[FaultTarget]:
    """The replicas ``fault`` may hit, in catalog order.

    ``primaries`` maps a service to its current primary (the monitors' view: a failover
    moves it); a service missing there has the catalog's.
    """
    if fault.target.region is not None:
        return [
            _target(s, r.name, primaries)
            for s in catalog.services
            for r in s.replicas
            if r.region == fault.target.region and r.process is not None
        ]
    service = catalog.service(fault.target.service or "")
    if service is None:
        return []
    primary = primaries.get(service.name, service.primary)
    wanted = fault.target.replica
    names = [r.name for r in service.replicas]
    if wanted == "primary":
        names = [n for n in names if n == primary]
    elif wanted == "standby":
        names = [n for n in names if n != primary]
    elif wanted != "any":
        names = [n for n in names if n == wanted]
    if fault.fault in REDIS_REPLICA_ONLY:
        names = [n for n in names if n != primary]
    return [_target(service, n, primaries) for n in names]


def select(selection: str, found: list[FaultTarget], rng: random.Random) -> list[FaultTarget]:
    """Apply ``all | count(n) | percent(p)`` to ``found``, drawing with ``rng``; order kept."""
    match = _SELECT.match(selection)
    if match is None:
        raise ValueError(f"select {selection!r} is not all, count(n) or percent(p)")
    if match.group(1) == "all":
        return list(found)
    if match.group(2) is not None:
        n = int(match.group(2))
    else:
        n = math.ceil(len(found) * int(match.group(3)) / 100)
    chosen = set(rng.sample(range(len(found)), min(n, len(found))))
    return [t for i, t in enumerate(found) if i in chosen]


def _target(service: Service, replica: str, primaries: dict[str, str]) -> FaultTarget:
    spec = service.replica(replica)
    assert spec is not None
    primary_name = primaries.get(service.name, service.primary)
    primary = service.replica(primary_name) if primary_name else None
    follows = primary is not None and primary.name != replica and spec.protocol == "redis"
    return FaultTarget(
        service=service.name,
        replica=replica,
        region=spec.region,
        url=str(spec.url),
        process=spec.process,
        primary_url=str(primary.url) if follows and primary is not None else None,
    )


def _probe_issues(at: str, probe: Probe, catalog: Catalog) -> list[CatalogIssue]:
    if probe.type == "no-incident":
        return []
    if probe.service is None:
        return [CatalogIssue(f"{at}.service", f"a {probe.type} probe needs a service")]
    service = catalog.service(probe.service)
    if service is None:
        return [CatalogIssue(f"{at}.service", f"unknown service {probe.service!r}")]
    if probe.type == "http" and service.frontend is None:
        why = f"service {probe.service!r} has no front end to probe"
        return [CatalogIssue(f"{at}.service", why)]
    if probe.type == "sync-lag" and not service.stateful:
        return [CatalogIssue(f"{at}.service", f"service {probe.service!r} replicates no state")]
    return []


def _fault_issues(at: str, fault: Fault, catalog: Catalog) -> list[CatalogIssue]:
    target = fault.target
    if fault.fault not in UNDO:
        return [CatalogIssue(f"{at}.fault", f"fault {fault.fault} cannot be undone: refused")]
    if (target.region is None) == (target.service is None):
        return [CatalogIssue(f"{at}.target", "name a service or a region, not both")]
    if fault.fault is FaultKind.REGION_STOP and target.region is None:
        return [CatalogIssue(f"{at}.target", "region-stop targets a region")]
    if target.region is not None:
        if fault.fault is not FaultKind.REGION_STOP:
            return [CatalogIssue(f"{at}.target", f"{fault.fault} targets a service's replicas")]
        regions = {r.region for s in catalog.services for r in s.replicas}
        if target.region not in regions:
            known = ", ".join(sorted(regions))
            why = f"unknown region {target.region!r} (known: {known})"
            return [CatalogIssue(f"{at}.target.region", why)]
        return []
    service = catalog.service(target.service or "")
    if service is None:
        return [CatalogIssue(f"{at}.target.service", f"unknown service {target.service!r}")]
    issues: list[CatalogIssue] = []
    named = target.replica not in ("primary", "standby", "any")
    if named and service.replica(target.replica) is None:
        why = f"service {service.name!r} has no replica {target.replica!r}"
        issues.append(CatalogIssue(f"{at}.target.replica", why))
    by_role = target.replica in ("primary", "standby")
    if by_role and service.redundancy is not Redundancy.ACTIVE_STANDBY:
        why = f"{target.replica} needs an active-standby service; {service.name} is "
        why += service.redundancy.value
        issues.append(CatalogIssue(f"{at}.target.replica", why))
    for replica in service.replicas:
        if named and replica.name != target.replica:
            continue
        issues += _undo_issues(at, fault.fault, service, replica.name)
    return issues


def _undo_issues(at: str, kind: FaultKind, service: Service, name: str) -> list[CatalogIssue]:
    replica = service.replica(name)
    assert replica is not None
    if kind in NEEDS_PROCESS and replica.process is None:
        why = f"{kind} of {name} cannot be undone: it has no process-control program"
        return [CatalogIssue(f"{at}.fault", why)]
    if kind in HTTP_ONLY and replica.protocol != "http":
        return [CatalogIssue(f"{at}.fault", f"{kind} needs an HTTP replica; {name} is Redis")]
    if kind in REDIS_REPLICA_ONLY and (replica.protocol != "redis" or not service.stateful):
        return [CatalogIssue(f"{at}.fault", f"{kind} needs a Redis standby; {name} is not one")]
    return []


@dataclass
class PlannedFault:
    """One fault of the method with the replicas the blast radius drew for it."""

    fault: Fault
    targets: list[FaultTarget]


def plan(prepared: Prepared, seed: int) -> tuple[list[PlannedFault], str | None]:
    """Draw every fault's targets with ``seed``; the refusal, if any, says why nothing runs.

    Refused: a fault with nothing to hit, or one that would leave a service without a healthy
    replica outside what the experiment hits (unless ``allow-unprotected``): the experiment
    aborts before injecting anything.
    """
    rng = random.Random(seed)
    experiment, catalog = prepared.experiment, prepared.catalog
    planned: list[PlannedFault] = []
    for fault in experiment.method:
        found = candidates(fault, catalog, prepared.primaries)
        chosen = select(fault.select, found, rng)
        if not chosen:
            return planned, f"fault {fault.name}: no replica to hit ({fault.target})"
        planned.append(PlannedFault(fault, chosen))
    if experiment.blast_radius.allow_unprotected:
        return planned, None
    targets = [t for p in planned for t in p.targets]
    for service in sorted({t.service for t in targets}):
        hit = sorted(t.replica for t in targets if t.service == service)
        spared = [r for r in prepared.healthy.get(service, []) if r not in hit]
        if not spared:
            return planned, (
                f"{service} has no healthy replica outside the blast radius "
                f"({', '.join(hit)} hit, "
                f"healthy now: {', '.join(prepared.healthy.get(service, [])) or 'none'}): "
                "it would be left down (allow-unprotected overrides)"
            )
    return planned, None

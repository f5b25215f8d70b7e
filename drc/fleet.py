"""Fleet-wide judgement, pure: root cause through ``depends_on``, system health, storm brake.

The Fleet workflow holds a ``FleetState`` and calls these functions; they take the time as an
argument and do no I/O, so every rule is unit- and property-tested.

- **Root cause**: a service that is not well while one of its (transitive) dependencies is
  down is *held* by the deepest such dependency: its automatic repairs wait while the root
  cause's repair holds the recovery lease, and it is expected to recover by itself after.
- **System health**: the share of services not serving; at ``system_failure_share`` (30 %, the
  seed's rule) the fleet raises ``system_failure`` (critical) and automatic repairs are paced
  by a fleet-wide token bucket.
- **Blindness**: when every region looks down at once, drc suspects its own eyes first
  (Kubernetes' zone eviction rule) and freezes every automatic repair until a region answers.
- **Region down**: when one region (of several) has every replica failed, it is evacuated
  (``drc.evacuation``): at full speed, as Kubernetes evicts from a wholly disrupted zone while
  the others are healthy, whatever the brake's pace for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

NORMAL_REASON = "automatic repairs run freely"
Health = Literal["up", "degraded", "down"]
SystemHealth = Literal["healthy", "degraded", "critical"]
BrakeMode = Literal["normal", "paced", "frozen"]


@dataclass(frozen=True)
class ServiceNode:
    """What the fleet knows of a service from the catalog."""

    depends_on: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    replica_regions: tuple[tuple[str, str], ...] = ()
    """(replica, region) for every replica, in catalog order."""
    redundancy: str = ""


@dataclass
class ServiceHealthReport:
    """A monitor's word on its service: sent whenever its availability or failures change."""

    service: str
    health: Health
    at: float
    failed_replicas: list[str] = field(default_factory=list)
    regions_down: list[str] = field(default_factory=list)
    """Regions in which every replica of this service is failed."""
    incident_id: str | None = None
    cause: str = ""
    repairing: bool = False
    """A repair of this service runs now (its recovery lease)."""
    monitor: str = ""
    """The reporting monitor's workflow id (where directives go; default ``monitor/<service>``)."""
    primary: str | None = None
    """The replica taking writes (active/standby): sent with every report, read by the API."""


@dataclass
class TokenBucket:
    """Automatic repairs allowed per minute while the brake paces them (a leaky bucket)."""

    per_minute: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        """Add what accrued since ``at``, up to one minute's worth."""
        if now > self.at:
            self.tokens = min(self.per_minute, self.tokens + (now - self.at) * self.per_minute / 60)
        self.at = max(self.at, now)

    def take(self, now: float) -> bool:
        """Take a token if one is there."""
        self.refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def next_token_in(self, now: float) -> float:
        """Seconds until a token is there (0 if one is)."""
        self.refill(now)
        missing = max(0.0, 1 - self.tokens)
        return missing * 60 / self.per_minute if self.per_minute > 0 else float("inf")


def dependencies(service: str, graph: Mapping[str, ServiceNode]) -> list[str]:
    """Every service ``service`` depends on, transitively, nearest first (no duplicates)."""
    seen: list[str] = []
    frontier = list(graph.get(service, ServiceNode()).depends_on)
    while frontier:
        name = frontier.pop(0)
        if name in seen or name == service:
            continue
        seen.append(name)
        frontier.extend(graph.get(name, ServiceNode()).depends_on)
    return seen


def root_cause(
    service: str, health: Mapping[str, Health], graph: Mapping[str, ServiceNode]
) -> str | None:
    """The deepest down dependency of ``service``: the one whose own dependencies are all up.

    None when no dependency is down. "Deepest" follows the graph: if market-data is down and
    so is risk-engine, which depends on it, order-gateway's root cause is market-data.
    """
    down = [d for d in dependencies(service, graph) if health.get(d) == "down"]
    for candidate in down:
        if not any(health.get(d) == "down" for d in dependencies(candidate, graph)):
            return candidate
    return down[-1] if down else None  # a cycle of down services: the farthest


def holds(health: Mapping[str, Health], graph: Mapping[str, ServiceNode]) -> dict[str, str]:
    """Each service that has a down dependency -> its root cause (the lease holder)."""
    held: dict[str, str] = {}
    for service in graph:
        root = root_cause(service, health, graph)
        if root is not None:
            held[service] = root
    return held


def failure_rate(health: Mapping[str, Health]) -> float:
    """The share of services not serving (down)."""
    if not health:
        return 0.0
    return sum(1 for h in health.values() if h == "down") / len(health)


MIN_DOWN_FOR_SYSTEM_FAILURE = 2
"""One service down is never a system failure, however small the catalog (1 of 3 is 33 %)."""


def is_system_failure(health: Mapping[str, Health], system_failure_share: float) -> bool:
    """The seed's rule: the share of services down reaches ``system_failure_share``.

    And at least ``MIN_DOWN_FOR_SYSTEM_FAILURE`` services are down.
    """
    down = sum(1 for h in health.values() if h == "down")
    return down >= MIN_DOWN_FOR_SYSTEM_FAILURE and failure_rate(health) >= system_failure_share


def system_health(health: Mapping[str, Health], system_failure_share: float) -> SystemHealth:
    """``critical`` at system failure, ``degraded`` if any service is not up."""
    if is_system_failure(health, system_failure_share):
        return "critical"
    if any(h != "up" for h in health.values()):
        return "degraded"
    return "healthy"


def regions_all_down(
    reports: Mapping[str, ServiceHealthReport], graph: Mapping[str, ServiceNode]
) -> list[str] | None:
    """Every region the catalog names, if every one of them has a service wholly down in it.

    None otherwise (and for a catalog of one region: losing it is not drc's blindness to
    judge). Down "in a region" means every replica of some service there failed.
    """
    regions = sorted({r for node in graph.values() for r in node.regions})
    if len(regions) < 2:
        return None
    down = {r for report in reports.values() for r in report.regions_down}
    return regions if all(r in down for r in regions) else None


MIN_SERVICES_IN_DOWN_REGION = 2
"""A region that holds one service only is never "down": that is the service's own loss."""


def regions_down(
    reports: Mapping[str, ServiceHealthReport], graph: Mapping[str, ServiceNode]
) -> list[str]:
    """Regions that are down while another region is not: every replica there failed.

    A region is down when every service with a replica in it reports every one of those
    replicas failed (``regions_down`` of its report), and it holds replicas of at least
    ``MIN_SERVICES_IN_DOWN_REGION`` services (one service's loss is that service's incident).
    Empty for a catalog of one region, and when every region is down at once (that is
    ``regions_all_down``: drc's blindness).
    """
    regions = sorted({r for node in graph.values() for r in node.regions})
    if len(regions) < 2 or regions_all_down(reports, graph) is not None:
        return []
    down = []
    for region in regions:
        members = [name for name, node in graph.items() if region in node.regions]
        if len(members) >= MIN_SERVICES_IN_DOWN_REGION and all(
            name in reports and region in reports[name].regions_down for name in members
        ):
            down.append(region)
    return down


def brake(
    health: Mapping[str, Health],
    reports: Mapping[str, ServiceHealthReport],
    graph: Mapping[str, ServiceNode],
    system_failure_share: float,
) -> tuple[BrakeMode, str]:
    """The storm brake's mode and the sentence that explains it."""
    everywhere = regions_all_down(reports, graph)
    if everywhere is not None:
        return (
            "frozen",
            f"every region ({', '.join(everywhere)}) looks down at once: more likely drc's own "
            "view than the world; automatic repairs are frozen until a region answers "
            "(operator repairs still run)",
        )
    rate = failure_rate(health)
    if is_system_failure(health, system_failure_share):
        down = sum(1 for h in health.values() if h == "down")
        return (
            "paced",
            f"system_failure: {down} of {len(health)} services down ({rate:.0%} ≥ "
            f"{system_failure_share:.0%}); automatic repairs are paced by the fleet's bucket",
        )
    return "normal", NORMAL_REASON


@dataclass
class FleetConfig:
    """The fleet's view of the catalog and its brake settings."""

    graph: dict[str, ServiceNode] = field(default_factory=dict)
    bucket_per_minute: float = 12.0
    system_failure_share: float = 0.3
    evacuate: bool = True
    """Evacuate a region whose every replica failed (catalog ``evacuation.enabled``)."""
    return_check_s: float = 30.0
    """How often an evacuated region's return is tried (catalog ``evacuation``)."""


@dataclass
class FleetDirective:
    """What the fleet tells a monitor: whose lease holds its repairs, and the brake's mode."""

    held_by: str | None = None
    root_incident: str | None = None
    mode: BrakeMode = "normal"
    reason: str = ""
    evacuating: list[str] = field(default_factory=list)
    """Regions being evacuated: automatic repairs of replicas there wait for the evacuation."""


@dataclass
class TokenRequest:
    """A monitor asks for leave to repair ``replica`` while the brake paces repairs."""

    service: str
    replica: str
    seq: int
    monitor: str = ""
    """The asking monitor's workflow id (default ``monitor/<service>``)."""


@dataclass
class TokenGrant:
    """Leave for the automatic repair asked for with ``seq``."""

    replica: str
    seq: int


@dataclass
class FleetNote:
    """A fleet decision, with its sentence."""

    at: float
    action: str
    reason: str


@dataclass
class OpenIncident:
    """An incident as the fleet sees it: its service and its root cause."""

    service: str
    incident_id: str | None
    root_cause: str
    held: list[str] = field(default_factory=list)
    """Dependents whose repairs wait for it."""


@dataclass
class FleetStatus:
    """The fleet's ``status`` query: what ``drc status`` shows on top."""

    system_health: SystemHealth
    failure_rate: float
    services: int
    down: list[str]
    mode: BrakeMode
    brake_reason: str
    tokens: float | None
    waiting: list[str]
    incidents: list[OpenIncident]
    notes: list[FleetNote]
    evacuations: dict[str, str] = field(default_factory=dict)
    """Region -> the workflow id of its running evacuation."""
    health: dict[str, Health] = field(default_factory=dict)
    """Service -> its health as its monitor last reported it (the API's one read of all)."""
    repairing: list[str] = field(default_factory=list)
    """Services whose monitor reported a repair running."""
    primaries: dict[str, str] = field(default_factory=dict)
    """Service -> the replica taking writes, as its monitor last reported (active/standby)."""

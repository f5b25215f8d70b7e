"""Region evacuation, pure: who is evacuated, in which order, and what each step says.

The Fleet workflow raises ``region_down`` when every replica of a region failed
(``drc.fleet.regions_down``) and starts ``evacuate-region/<region>``: one child per service
with a replica there, in dependency order (a level's children run together, the next level
starts when they have ended), each asking the service's own monitor to fail over through the
operator's path (the ``failover`` update: one path for manual and automatic repair). Then the
evacuation waits for the region to return and re-protects what it evacuated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from drc.fleet import ServiceNode, dependencies

EVACUATOR = "fleet"
"""The operator name an evacuation's failovers and re-protections are recorded under."""

StepOutcome = Literal["failed-over", "already-elsewhere", "served-elsewhere", "stranded", "failed"]
RestoreOutcome = Literal["restored", "nothing-owed", "waiting"]


@dataclass(frozen=True)
class Evacuee:
    """A service with replicas in the evacuated region, as the catalog has it."""

    service: str
    redundancy: str
    in_region: tuple[str, ...]
    elsewhere: tuple[str, ...]


@dataclass
class EvacuationInput:
    """What ``evacuate-region/<region>`` works on."""

    region: str
    levels: list[list[Evacuee]]
    """Services by dependency level: every dependency of a level is in an earlier one."""
    return_check_s: float = 10.0
    """How often the region's return is tried while it stays down (re-protection attempts)."""
    reason: str = ""
    progress: EvacuationProgress | None = None
    """Carried across continue-as-new while the region is awaited (None: start from scratch)."""


@dataclass
class EvacueeRequest:
    """One service's step, for its child workflow and the activity that does it."""

    region: str
    evacuee: Evacuee
    reason: str


@dataclass
class EvacuationStep:
    """What happened to one service: its outcome and the sentence that explains it."""

    service: str
    outcome: StepOutcome
    detail: str
    primary: str | None = None
    workflow_id: str | None = None
    """The failover run the step started or attached to, if any."""


@dataclass
class RestoreStep:
    """One attempt to re-protect a service with the region's replicas."""

    service: str
    outcome: RestoreOutcome
    detail: str


@dataclass
class EvacuationResult:
    """The evacuation's end: every step, and when the region returned (re-protected)."""

    region: str
    steps: list[EvacuationStep] = field(default_factory=list)
    restored: list[RestoreStep] = field(default_factory=list)
    served_elsewhere_at: float | None = None
    returned_at: float | None = None


@dataclass
class EvacuationProgress:
    """What an evacuation carries across continue-as-new while it waits for the region."""

    result: EvacuationResult
    pending: list[Evacuee] = field(default_factory=list)


def evacuees(region: str, graph: Mapping[str, ServiceNode]) -> list[Evacuee]:
    """Every service with a replica in ``region``, with its replicas in and out of it."""
    found = []
    for name, node in graph.items():
        inside = tuple(r for r, where in node.replica_regions if where == region)
        if inside:
            outside = tuple(r for r, where in node.replica_regions if where != region)
            found.append(Evacuee(name, node.redundancy, inside, outside))
    return found


def dependency_levels(
    services: list[Evacuee], graph: Mapping[str, ServiceNode]
) -> list[list[Evacuee]]:
    """``services`` in levels: a service's dependencies among them are in earlier levels.

    Catalog order within a level. When only cycles are left, the first service whose every
    remaining dependency depends back on it (a cycle nothing else left feeds) goes alone, so
    every service is placed, and after every dependency outside its cycle.
    """
    left = list(services)
    levels: list[list[Evacuee]] = []
    while left:
        names = {e.service for e in left}
        needs = {e.service: names & set(dependencies(e.service, graph)) for e in left}
        level = [e for e in left if not needs[e.service]]
        if not level:
            closed = [
                e
                for e in left
                if all(e.service in dependencies(d, graph) for d in needs[e.service])
            ]
            level = closed[:1] or left[:1]
        levels.append(level)
        left = [e for e in left if e not in level]
    return levels

"""Chaos experiments: the faults drc can inject and undo, and what a run passes between steps.

Pure kernel types, shared by the experiment model (runbooks/chaos.py), the ChaosExperiment
workflow and the fault and observation activities. A fault is resolved against the catalog
before it is injected: the activities receive concrete replicas, never names to look up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    """Every fault drc can inject; each has an undo (``UNDO``)."""

    KILL = "kill"
    """SIGKILL the replica's process; undone by starting it if drc has not."""
    HANG = "hang"
    """SIGSTOP the replica's process; undone by SIGCONT (if it still runs)."""
    REGION_STOP = "region-stop"
    """Every process of a region killed and kept from starting (the demo's fail markers);
    undone by removing the markers and starting what drc has not."""
    LATENCY = "latency"
    """The demo service's fault switch delays every answer by ``latency_ms``."""
    ERRORS = "errors"
    """The demo service's fault switch answers ``error_share`` of requests with a 500."""
    NETCUT = "netcut"
    """An iptables rule drops every packet to the replica's port on loopback."""
    REPLICATION_BREAK = "replication-break"
    """A Redis replica is pointed at a port where no primary listens (``REPLICAOF``);
    undone by pointing it at its primary again."""


UNDO: dict[FaultKind, str] = {
    FaultKind.KILL: "start the process if it is not running",
    FaultKind.HANG: "SIGCONT the process",
    FaultKind.REGION_STOP: "remove the fail markers, start what is not running",
    FaultKind.LATENCY: "remove the latency marker",
    FaultKind.ERRORS: "remove the error marker",
    FaultKind.NETCUT: "delete the iptables rule",
    FaultKind.REPLICATION_BREAK: "REPLICAOF the primary again",
}
"""How each fault is undone; a fault kind missing here is refused at validation."""

NEEDS_PROCESS = {FaultKind.KILL, FaultKind.HANG, FaultKind.REGION_STOP}
"""Faults whose target must have a process-control program (to undo them)."""
HTTP_ONLY = {FaultKind.LATENCY, FaultKind.ERRORS}
"""Faults through the demo services' fault switch: HTTP replicas only."""
REDIS_REPLICA_ONLY = {FaultKind.REPLICATION_BREAK}
"""Faults on a Redis standby (a replica that has a primary to follow)."""


@dataclass
class FaultTarget:
    """One replica a fault acts on, resolved from the catalog."""

    service: str
    replica: str
    region: str
    url: str
    """The replica's URL (``http://host:port/`` or ``redis://host:port``)."""
    process: str | None = None
    """Its process-control program name."""
    primary_url: str | None = None
    """For a Redis standby: the URL of the primary it follows (to re-attach it)."""


@dataclass
class FaultInput:
    """Inject (or undo) one fault on its targets; the same input for both."""

    kind: FaultKind
    targets: list[FaultTarget]
    supervisor_url: str
    run: str
    """The experiment run's id: tags what the fault leaves behind (iptables comments)."""
    latency_ms: float = 0.0
    error_share: float = 0.0


@dataclass
class FaultResult:
    """What an inject or an undo did, as a sentence, and when (Unix seconds)."""

    kind: FaultKind
    detail: str
    at: float


@dataclass
class ProbeOutcome:
    """One steady-state probe: within its tolerance or not, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass
class SteadyState:
    """A steady-state hypothesis checked once: every probe's outcome."""

    ok: bool
    probes: list[ProbeOutcome] = field(default_factory=list)
    at: float = 0.0

    def failing(self) -> str:
        """The failing probes, as one sentence."""
        bad = [f"{p.name}: {p.detail}" for p in self.probes if not p.ok]
        return "; ".join(bad) or "every probe within tolerance"


@dataclass
class SteadyProbe:
    """A steady-state probe resolved against the catalog (front end address filled in)."""

    name: str
    type: str
    """``http``, ``no-incident``, ``sync-lag`` or ``service-healthy``."""
    service: str | None = None
    url: str | None = None
    """For ``http``: the front end URL to GET."""
    status_min: int = 200
    status_max: int = 299
    below_ms: float | None = None
    method: str = "GET"
    body: str | None = None
    """For a POST: the JSON body sent."""
    samples: int = 20
    """For sync-lag: how many of the latest lag samples the p99 is taken over."""


@dataclass
class SteadyInput:
    """Check these probes; with ``within_s``, again until they hold or the time is up."""

    probes: list[SteadyProbe]
    within_s: float = 0.0


@dataclass
class PrepareInput:
    """Load and validate experiment ``experiment``; ``run`` is the asking workflow's id."""

    experiment: str
    run: str


@dataclass
class WatchInput:
    """Watch drc deal with an injected fault: detection, recovery, and the safeguards.

    Detection is the first monitor decision on a targeted replica at or after ``since``;
    recovery is every probe in ``recovery`` holding after the detection and at or after
    ``recover_after`` (the rollback, for a fault drc does not repair itself). A safeguard
    breach is a service outside ``services`` with a failed replica, or an incident open on
    one: the watch returns at once. It gives up ``until_s`` seconds after ``since``.
    """

    replicas: list[str]
    services: list[str]
    since: float
    until_s: float
    recovery: list[SteadyProbe]
    recover_after: float = 0.0
    detect_only: bool = False


@dataclass
class WatchOutcome:
    """What the watch saw (Unix seconds); ``breach`` says why the experiment must abort."""

    detected_at: float | None = None
    detected_by: str = ""
    recovered_at: float | None = None
    breach: str | None = None
    last: str = ""
    """The last failing recovery probe, when recovery was not seen."""


@dataclass
class JournalEntry:
    """One step of a run, as Chaos Toolkit journals them: status, start, end, detail."""

    step: str
    status: str
    """``succeeded``, ``failed``, ``skipped`` or ``aborted``."""
    start: float
    end: float
    detail: str

    @property
    def duration_s(self) -> float:
        """How long the step took."""
        return self.end - self.start


@dataclass
class ChaosRunInput:
    """Run the experiment named ``experiment`` (``runbooks/chaos/<name>.yaml``)."""

    experiment: str
    seed: int | None = None
    """The blast radius draw's seed; None: drawn by the workflow (and recorded)."""
    settle_s: float = 120.0
    """How long the steady state may take to return after the rollbacks."""


@dataclass
class ChaosResult:
    """A run's verdict and figures; the journal is the run's own account of every step."""

    experiment: str
    verdict: str
    """``passed``, ``failed`` or ``aborted``."""
    reason: str
    seed: int
    targets: list[str] = field(default_factory=list)
    time_to_detect_s: float | None = None
    time_to_recover_s: float | None = None
    objective_met: bool | None = None
    """Detected and recovered within the objective; None when either was not measured."""
    journal: list[JournalEntry] = field(default_factory=list)
    journal_path: str | None = None
    report_path: str | None = None

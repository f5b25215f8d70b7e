"""The service catalog: services, replicas, regions, redundancy, probes, checks, thresholds.

Every model forbids unknown keys, so a typo in the YAML is an error and never silently dropped.
Cross-references (duplicates, dependencies, the primary) are checked by ``cross_check`` so that
each problem can be reported with its own location.
"""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, HttpUrl, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class StrictModel(BaseModel):
    """Base of every catalog model: immutable and strict about keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Redundancy(StrEnum):
    """How a service's replicas share the work."""

    ACTIVE_ACTIVE = "active-active"
    ACTIVE_STANDBY = "active-standby"
    SINGLE = "single"


class ProbeSettings(StrictModel):
    """How often and how patiently drc probes each replica."""

    interval_ms: int = Field(1000, ge=100, le=5000, description="Heartbeat period (≤ 5 s).")
    timeout_ms: int = Field(500, ge=10, description="Per-probe timeout; at most the interval.")
    failure_threshold: int = Field(3, ge=1, description="Consecutive misses before failed.")
    recovery_threshold: int = Field(2, ge=1, description="Consecutive passes before healthy.")
    health_every: int = Field(
        5, ge=1, description="Run /health and the replica's checks every N heartbeats."
    )
    startup_grace_s: float = Field(
        10,
        ge=0,
        description="Misses of a replica that process control reports STARTING, or started "
        "less than this long ago, are not failures (a replica still loading is not dead).",
    )

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> ProbeSettings:
        if self.timeout_ms > self.interval_ms:
            raise ValueError(
                f"timeout_ms ({self.timeout_ms}) must not exceed interval_ms ({self.interval_ms})"
            )
        return self


class Thresholds(StrictModel):
    """When a replica that answers is still not well."""

    latency_degraded_ms: float | None = Field(
        None, gt=0, description="Heartbeat latency above this marks the replica degraded."
    )
    latency_baseline: bool = Field(
        True,
        description="Also learn each replica's normal heartbeat latency from its clean samples "
        "(as TCP learns a round-trip time) and count a heartbeat far above it as slow.",
    )
    latency_baseline_k: float = Field(
        4, gt=0, description="Slow: above baseline + k × deviation, and above both bounds below."
    )
    latency_baseline_ratio: float = Field(
        3, ge=1, description="...and above ratio × baseline (jitter of a steady service is fine)."
    )
    latency_baseline_floor_ms: float = Field(
        50,
        ge=0,
        description="...and above this: below it a busy prober's own scheduling delay "
        "outweighs the service's.",
    )
    latency_baseline_min_samples: int = Field(
        20, ge=1, description="Clean samples the baseline learns before it judges."
    )
    latency_baseline_relearn_s: float | None = Field(
        3600,
        gt=0,
        description="After this long of nothing but slow heartbeats, they teach the baseline "
        "too: a sustained shift becomes the new normal. Null: never.",
    )
    error_rate_window: int = Field(
        20, ge=2, le=1000, description="Last probes (heartbeats and /health) the error rate counts."
    )
    error_rate_max: float | None = Field(
        0.2,
        gt=0,
        lt=1,
        description="A share of failed probes above this, in a full window, degrades a replica "
        "that is not failed (error_rate_increase). Null: off.",
    )
    sync_lag_ms: float = Field(
        100, gt=0, description="Replicated state: replication lag above this is sync_degraded."
    )
    flap_window_s: float = Field(300, gt=0, description="Window for counting transitions.")
    flap_max_transitions: int = Field(
        6, ge=2, description="Transitions in the window that make a replica flapping."
    )
    flap_freeze_s: float = Field(
        300,
        gt=0,
        description="How long a flapping replica's automatic restarts stay frozen, unless an "
        "operator lifts the freeze earlier (drc resume, drc restart).",
    )
    near_miss_s: float = Field(
        5,
        ge=0,
        description="An incident that healed by itself or by restarts alone within this many "
        "seconds of its first failed probe, with the service never down, is a near miss: a "
        "one-line record, no report, no page.",
    )


class RestartPolicy(StrictModel):
    """Self-healing by restart, and when to stop trying."""

    enabled: bool = True
    health_timeout_s: float = Field(60, gt=0, description="Time for a restarted replica to pass.")
    crash_loop_max: int = Field(3, ge=1, description="Restarts allowed within the window.")
    crash_loop_window_s: float = Field(300, gt=0)


class FailoverPolicy(StrictModel):
    """How an active/standby service replaces a failed primary (design notes §5)."""

    enabled: bool = True
    first: Literal["failover", "restart"] = Field(
        "failover",
        description="On a failed primary: fail over at once, or restart it first and fail over "
        "only if the restart fails or crash-loops.",
    )
    reprotect: bool = Field(True, description="Bring the old primary back as the new standby.")
    max_lag_on_failover_ms: float = Field(
        0,
        ge=0,
        description="Replicated state: how far behind (ms) the replica may be when it is "
        "promoted; 0 means it must have every byte the fenced primary has.",
    )


class HttpCheck(StrictModel):
    """GET a URL and expect a status code."""

    type: Literal["http"]
    url: HttpUrl
    expect_status: int = Field(200, ge=100, le=599)
    timeout_ms: int = Field(1000, ge=10)


class TcpCheck(StrictModel):
    """Open a TCP connection."""

    type: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)
    timeout_ms: int = Field(1000, ge=10)


class RedisCheck(StrictModel):
    """PING a Redis server and read its role; optionally require a role."""

    type: Literal["redis"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    expect_role: Literal["master", "slave"] | None = None
    timeout_ms: int = Field(1000, ge=10)


class PostgresCheck(StrictModel):
    """Run ``SELECT 1`` on a PostgreSQL database."""

    type: Literal["postgres"]
    dsn: str = Field(min_length=1, description="libpq connection string or URL.")
    timeout_ms: int = Field(2000, ge=10)


Check = Annotated[HttpCheck | TcpCheck | RedisCheck | PostgresCheck, Field(discriminator="type")]


class Replica(StrictModel):
    """One running copy of a service."""

    name: Name
    region: Name
    url: AnyUrl = Field(
        description="http(s)://host:port of an HTTP service (heartbeat and health paths are "
        "appended), or redis://host:port of a Redis server (probed with PING and INFO)."
    )
    heartbeat_path: str = "/health/heartbeat"
    health_path: str = "/health"
    process: str | None = Field(
        None, min_length=1, description="Process-control program name; none means no restart."
    )
    checks: tuple[Check, ...] = ()

    def endpoint(self, path: str) -> str:
        """The replica's base URL joined with ``path``."""
        return str(self.url).rstrip("/") + path

    @property
    def protocol(self) -> Literal["http", "redis"]:
        """How drc talks to this replica."""
        return "redis" if self.url.scheme == "redis" else "http"

    @model_validator(mode="after")
    def _known_scheme(self) -> Replica:
        if self.url.scheme not in ("http", "https", "redis"):
            raise ValueError(f"url scheme {self.url.scheme!r} is not http, https or redis")
        if self.url.scheme == "redis" and (self.url.host is None or self.url.port is None):
            raise ValueError("a redis:// url needs a host and a port")
        return self


class Service(StrictModel):
    """A service, its replicas and how drc watches and repairs it."""

    name: Name
    group: str = "default"
    depends_on: tuple[str, ...] = ()
    redundancy: Redundancy = Redundancy.SINGLE
    primary: str | None = Field(None, description="The active replica of an active/standby pair.")
    frontend: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$",
        description="host:port of the traffic manager's front end that clients use.",
    )
    replicas: tuple[Replica, ...] = Field(min_length=1)
    probe: ProbeSettings = ProbeSettings()
    thresholds: Thresholds = Thresholds()
    restart: RestartPolicy = RestartPolicy()
    failover: FailoverPolicy = FailoverPolicy()

    @property
    def stateful(self) -> bool:
        """Replicated state (Redis): fails over with the state runbooks."""
        return any(r.protocol == "redis" for r in self.replicas)

    def replica(self, name: str) -> Replica | None:
        """The replica called ``name``, or None."""
        return next((r for r in self.replicas if r.name == name), None)


class ProcessControl(StrictModel):
    """Where drc reaches process control."""

    supervisor_url: HttpUrl = HttpUrl("http://127.0.0.1:9001/RPC2")


class TrafficControl(StrictModel):
    """Where drc reaches the traffic manager (HAProxy's runtime API)."""

    haproxy_socket: str | None = Field(
        None, description="Path of HAProxy's admin socket; a relative path is under DRC_HOME."
    )
    haproxy_state_file: str | None = Field(
        None,
        description="Where drc keeps HAProxy's server state (`show servers state`), rewritten "
        "after every traffic change drc makes and loaded by HAProxy when it starts "
        "(`server-state-file`), so a restarted HAProxy comes back with the states drc set "
        "(drain, maint), not the initial config's; a relative path is under DRC_HOME. Every "
        "worker that changes traffic must see the same file (same DRC_HOME or an absolute "
        "path). Unset: a restarted HAProxy starts from its config.",
    )
    haproxy_service: str | None = Field(
        None,
        description="The catalog service that is HAProxy itself: its one replica's url is a "
        "health front end the generated HAProxy config serves (`/health/heartbeat`, "
        "`/health`), and its `process` is HAProxy's process-control program, so drc watches "
        "HAProxy and restarts it like any replica.",
    )

    def socket_path(self, home: Path) -> Path | None:
        """The admin socket's path, a relative one taken under ``home``; None if unset."""
        if self.haproxy_socket is None:
            return None
        return home / self.haproxy_socket

    def state_file_path(self, home: Path) -> Path | None:
        """The server-state file's path, a relative one taken under ``home``; None if unset."""
        if self.haproxy_state_file is None:
            return None
        return home / self.haproxy_state_file


class VantagePoint(StrictModel):
    """A place probes run from.

    A ``drc worker --region NAME`` on task queue ``drc-probes-NAME``, its probes leaving from
    ``source_address``.
    """

    name: Name
    source_address: IPv4Address | None = Field(
        None,
        description="Local address the vantage point's probes leave from (e.g. 127.0.0.12); "
        "unset: the system's choice.",
    )


class StormBrake(StrictModel):
    """Fleet-wide limits on automatic repairs (the Fleet workflow applies them)."""

    repairs_per_minute: float = Field(
        12,
        gt=0,
        description="While the system is failing (system_failure_share), automatic repairs "
        "take a token from a fleet-wide bucket refilled at this rate.",
    )
    system_failure_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="Share of services down at which the fleet raises system_failure and "
        "paces automatic repairs.",
    )


class Evacuation(StrictModel):
    """What the fleet does when every replica of a region failed (``region_down``)."""

    enabled: bool = Field(
        True,
        description="Evacuate the region: fail every service whose primary is there over to "
        "its replicas elsewhere, dependencies first (evacuate-region/<region>).",
    )
    return_check_s: float = Field(
        30,
        gt=0,
        description="While the region stays down, how often its replicas are tried again "
        "(re-protected as standbys, restarted) to learn whether it returned.",
    )


class Catalog(StrictModel):
    """The whole redundancy model drc watches."""

    version: Literal[1] = 1
    process_control: ProcessControl = ProcessControl()
    traffic_control: TrafficControl = TrafficControl()
    allowed_commands: tuple[str, ...] = Field(
        (), description="Executables a runbook's `command` step may run (argv[0], exact)."
    )
    storm_brake: StormBrake = StormBrake()
    evacuation: Evacuation = Evacuation()
    vantage_points: tuple[VantagePoint, ...] = Field(
        (),
        description="Where a replica's failure is confirmed before it is repaired: it is "
        "objectively down only when a majority of these see it down (none: drc's own watch "
        "decides alone).",
    )
    watch_from: Name | None = Field(
        None,
        description="The vantage point whose source address drc's own watch probes from (its "
        "view counts as that vantage point's vote).",
    )
    services: tuple[Service, ...] = Field(min_length=1)

    def vantage(self, name: str) -> VantagePoint | None:
        """The vantage point called ``name``, or None."""
        return next((v for v in self.vantage_points if v.name == name), None)

    def service(self, name: str) -> Service | None:
        """The service called ``name``, or None."""
        return next((s for s in self.services if s.name == name), None)

    def traffic_manager_replica(self) -> Replica | None:
        """The replica that is HAProxy itself (``traffic_control.haproxy_service``), or None."""
        name = self.traffic_control.haproxy_service
        service = self.service(name) if name is not None else None
        return service.replicas[0] if service is not None else None

    @model_validator(mode="after")
    def _vantage_points_are_distinct(self) -> Catalog:
        names = [v.name for v in self.vantage_points]
        if len(names) != len(set(names)):
            raise ValueError(f"vantage_points: a name is used twice ({', '.join(names)})")
        if self.watch_from is not None and self.watch_from not in names:
            raise ValueError(f"watch_from: {self.watch_from!r} is not a vantage point")
        return self

    @model_validator(mode="after")
    def _traffic_manager_is_one_http_replica(self) -> Catalog:
        name = self.traffic_control.haproxy_service
        if name is None:
            return self
        service = self.service(name)
        where = "traffic_control.haproxy_service"
        if service is None:
            raise ValueError(f"{where}: unknown service {name!r}")
        if self.traffic_control.haproxy_socket is None:
            raise ValueError(f"{where}: needs traffic_control.haproxy_socket to drive HAProxy")
        if len(service.replicas) != 1 or service.frontend is not None:
            raise ValueError(f"{where}: {name} must have one replica and no frontend")
        replica = service.replicas[0]
        if replica.protocol != "http" or replica.url.port is None:
            raise ValueError(f"{where}: {name}'s replica needs an http://host:port url")
        return self

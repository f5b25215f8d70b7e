"""The replicated-state backend interface and the values it speaks in.

``StateReplicator`` is what the actions and the watch rely on (design notes §5: guard on lag,
fence the old primary, promote the standby, re-protect); ``RedisReplicator`` implements it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from activities.state.errors import StateError

HEARTBEAT_KEY = "drc:heartbeat"
"""Prefix of the keys ``measure_lag`` writes its timestamps to, one per replica measured
(``heartbeat_key``); every ``drc:*`` key is drc's own bookkeeping."""


def heartbeat_key(replica: Endpoint) -> str:
    """The heartbeat key measuring ``replica``: its own, as pt-heartbeat keeps a row per server.

    One key shared by every standby's measurement let one poller overwrite another's value
    before its replica showed it: a standby cut off from the primary (its poller writing and
    waiting out the timeout) made a healthy one look ~800 ms behind.
    """
    return f"{HEARTBEAT_KEY}:{replica}"


FENCED_MIN_REPLICAS = 1_000_000
"""``min-replicas-to-write`` while fenced: more replicas than any deployment will ever have."""

NEVER_UP = -1.0
"""``link_down_since_s`` of a replica whose link has not been up since it started (Redis's -1)."""


@dataclass(frozen=True)
class Endpoint:
    """Where one state server listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``host:port`` or ``redis://host:port`` (a trailing ``/db`` is ignored)."""
        rest = text.strip().removeprefix("redis://").split("/", 1)[0]
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise StateError(f"not a host:port endpoint: {text!r}")
        return cls(host, int(port))


@dataclass
class ReplicationInfo:
    """One server's view of replication (``INFO replication`` and its fencing setting)."""

    role: Literal["master", "slave"]
    offset: int
    """``master_repl_offset`` on a primary, ``slave_repl_offset`` on a replica."""
    link_up: bool | None
    """A replica's ``master_link_status == "up"``; None on a primary."""
    connected_replicas: int
    primary: Endpoint | None
    """The primary a replica follows (``master_host:master_port``); None on a primary."""
    min_replicas_to_write: int
    """Non-zero means writes need that many good replicas; ``FENCED_MIN_REPLICAS`` = fenced."""
    replication_id: str = ""
    """``master_replid``: a synced replica shares its primary's, so offsets are comparable. A
    replica keeps it after its link breaks, until it syncs with another primary."""
    link_down_since_s: float | None = None
    """How long a replica's link has been down, as it says (``master_link_down_since_seconds``,
    whole seconds, so up to a second high); ``NEVER_UP`` when it has not been up since the
    replica started; None while the link is up and on a primary."""

    @property
    def fenced(self) -> bool:
        """Whether this server refuses every write with NOREPLICAS."""
        return self.min_replicas_to_write >= FENCED_MIN_REPLICAS

    def __str__(self) -> str:
        if self.role == "master":
            return f"primary offset={self.offset} replicas={self.connected_replicas}" + (
                " fenced" if self.fenced else ""
            )
        return f"replica of {self.primary} offset={self.offset} link={link_text(self)}"


def link_text(info: ReplicationInfo | LagSample) -> str:
    """``up``, ``down`` or ``down for 3 s`` (``down since start`` when never up)."""
    if info.link_up:
        return "up"
    if info.link_down_since_s is None:
        return "down"
    if info.link_down_since_s < 0:
        return "down since start"
    return f"down for {info.link_down_since_s:g} s"


@dataclass
class LagSample:
    """One replication-lag measurement between a primary and a replica."""

    lag_ms: float | None
    """Time from writing the heartbeat to seeing it on the replica; None when not seen."""
    primary_offset: int
    """The primary's ``master_repl_offset``; -1 when the primary did not answer."""
    replica_offset: int
    """The replica's own offset, or, when it did not answer, the last one it acknowledged to the
    primary (-1 when neither is known)."""
    link_up: bool
    """The replica answered and reported its link to the primary up."""
    at: float
    """Wall-clock time (``time.time()``) of the measurement."""
    error: str | None = None
    primary_reachable: bool = True
    """False when the primary did not answer (no heartbeat written, ``primary_offset`` -1): the
    replica fields are then what the replica itself says, the evidence that tells a dead
    primary (its replicas' links are down) from one only drc cannot reach (links up)."""
    link_down_since_s: float | None = None
    """How long the replica says its link has been down (see ``ReplicationInfo``): None while
    up or when the replica did not answer; ``NEVER_UP`` when never up since it started."""
    replid: str = ""
    """The replica's ``master_replid``: offsets compare only within one replication id. Empty
    when the replica did not answer."""
    primary_replid: str = ""
    """The primary's ``master_replid``; empty when the primary did not answer."""

    def __str__(self) -> str:
        if not self.primary_reachable:
            offset = self.replica_offset if self.replica_offset >= 0 else "unknown"
            return (
                f"primary unreachable ({self.error}); replica offset {offset}, "
                f"link {link_text(self)}"
            )
        gap = self.primary_offset - self.replica_offset
        lag = (
            f"lag {self.lag_ms:.2f} ms"
            if self.lag_ms is not None
            else f"lag unknown ({self.error})"
        )
        return f"{lag}, offset gap {gap} bytes, link {link_text(self)}"


@dataclass
class ConsistencyResult:
    """A sampled comparison of a replica's keys with its primary's."""

    checked: int
    missing_on_replica: list[str]
    mismatched: list[str]
    primary_offset: int
    replica_offset: int
    offsets_equal: bool
    at: float

    @property
    def ok(self) -> bool:
        """Every sampled key is on the replica with the primary's value."""
        return not self.missing_on_replica and not self.mismatched

    def __str__(self) -> str:
        return (
            f"checked {self.checked} keys: {len(self.missing_on_replica)} missing on replica, "
            f"{len(self.mismatched)} different; offsets {self.primary_offset}/"
            f"{self.replica_offset}"
        )


class StateReplicator(ABC):
    """A replicated-state backend; every method is a read or an idempotent convergence."""

    @abstractmethod
    async def info(self, ep: Endpoint) -> ReplicationInfo:
        """``ep``'s role, offset, link and fencing; read-only."""

    @abstractmethod
    async def measure_lag(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int = 1000
    ) -> LagSample:
        """Write a heartbeat on ``primary`` and time its arrival on ``replica``.

        A primary that does not answer gives a sample with ``primary_reachable`` False and
        the replica's own view, not an error.
        """

    @abstractmethod
    async def promote(self, ep: Endpoint) -> ReplicationInfo:
        """Make ``ep`` a writable primary; idempotent."""

    @abstractmethod
    async def replicate_from(self, ep: Endpoint, primary: Endpoint) -> ReplicationInfo:
        """Make ``ep`` a replica of ``primary``; idempotent."""

    @abstractmethod
    async def fence(self, ep: Endpoint) -> str:
        """Make ``ep`` refuse every write, reversibly; idempotent; returns what was done."""

    @abstractmethod
    async def unfence(self, ep: Endpoint) -> str:
        """Undo ``fence``; idempotent; returns what was done."""

    @abstractmethod
    async def wait_in_sync(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> LagSample:
        """Wait until ``replica`` has everything ``primary`` has; read-only."""

    @abstractmethod
    async def consistency(
        self, primary: Endpoint, replica: Endpoint, sample: int = 100
    ) -> ConsistencyResult:
        """Compare a sample of keys on both servers; read-only."""

    @abstractmethod
    async def persist(self, ep: Endpoint) -> str:
        """Persist ``ep``'s current role to its config file, so a restart keeps it."""

    @abstractmethod
    async def write_and_read(self, ep: Endpoint, key_prefix: str = "drc:verify") -> float:
        """Prove ``ep`` accepts writes; returns the round trip in ms."""

    async def close(self) -> None:  # noqa: B027 - a backend without connections has nothing to do
        """Release connections."""

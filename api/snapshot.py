"""The API's live view, refreshed in the background: reads never fan out to every monitor.

Once a second the refresher reads the fleet workflow's one ``status`` query, each watch
group's last heartbeat (one describe per group of 50 services: every replica's state, latency
and replication stats, and each service's primary), HAProxy's server states and the store's
failures of the last hour. Only a service without a watch group (``DRC_WATCH_GROUP_SIZE=0``)
is asked through its monitor. Requests answer from the latest snapshot, and the big bodies
(``/recovery/status``, ``/recovery/services``) are serialized once per snapshot, so a
request's cost does not grow with the fleet's size nor with the number of callers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from activities.watch_group import group_progress
from drc.catalog import Catalog, Redundancy, Service
from drc.detector import is_suspect
from drc.fleet import FleetStatus
from drc.incident import FailureRecord
from drc.model import ReplicaState, ReplicaTrack
from drc.names import FLEET_ID, backend_name, monitor_id, server_name
from drc.status import MonitorStatus
from drc.store import StoreError
from drc.sync import SyncStats
from workers.monitors import groups_for
from workers.status import traffic_states

log = logging.getLogger("drc.api")

REFRESH_S = 1.0


@dataclass
class LiveService:
    """What the watch last heartbeated about one service."""

    primary: str | None
    paused: bool
    tracks: dict[str, ReplicaTrack] = field(default_factory=dict)
    sync: dict[str, SyncStats] = field(default_factory=dict)


@dataclass
class Snapshot:
    """One consistent read of the deployment; ``errors`` says what could not be read."""

    taken_at: float
    fleet: FleetStatus | None
    live: dict[str, LiveService]
    traffic: dict[tuple[str, str], str]
    errors: list[str] = field(default_factory=list)
    failures: list[FailureRecord] = field(default_factory=list)
    """The last hour's failures, read from the store with the rest."""
    store_ok: bool = True
    """Whether the store answered this snapshot's read (``GET /health`` says so)."""
    rendered: dict[str, bytes] = field(default_factory=dict)
    """Response bodies made from this snapshot, so a burst of requests serializes once."""

    def render(self, key: str, build: Callable[[], bytes]) -> bytes:
        """``build()``'s bytes, made once per snapshot (every request in the same second)."""
        found = self.rendered.get(key)
        if found is None:
            found = self.rendered[key] = build()
        return found

    def replica_state(self, service: str, replica: str) -> ReplicaState:
        """The replica's state, ``suspect`` while it misses heartbeats below the threshold."""
        live = self.live.get(service)
        track = live.tracks.get(replica) if live is not None else None
        if track is None:
            return ReplicaState.UNKNOWN
        return ReplicaState.SUSPECT if is_suspect(track) else track.state

    def primary(self, service: Service) -> str | None:
        """The replica that takes writes now (active/standby), as the monitor last said."""
        if service.redundancy is not Redundancy.ACTIVE_STANDBY:
            return None
        reported = self.fleet.primaries.get(service.name) if self.fleet is not None else None
        live = self.live.get(service.name)
        return reported or (live.primary if live is not None else None) or service.primary


async def take_snapshot(
    client: Client,
    catalog: Catalog,
    group_size: int,
    home: Path | None,
    failures: Callable[[], list[FailureRecord]] | None = None,
) -> Snapshot:
    """Read the fleet, the watch groups and HAProxy once (see the module docstring)."""
    errors: list[str] = []
    fleet: FleetStatus | None = None
    try:
        fleet = await client.get_workflow_handle(FLEET_ID).query("status", result_type=FleetStatus)
    except RPCError as exc:
        errors.append(f"the fleet does not answer: {exc.message}")
    live: dict[str, LiveService] = {}
    grouped = groups_for(catalog, group_size) if group_size > 0 else {}
    for group in sorted(set(grouped.values())):
        progress = await group_progress(client, group)
        if progress is None:
            errors.append(f"watch group {group} has no live progress yet")
            continue
        for name, member in progress.members.items():
            spec = progress.specs.get(name)
            live[name] = LiveService(
                spec.primary if spec else None,
                spec.paused if spec else False,
                member.tracks,
                member.sync,
            )
    for service in catalog.services:
        if service.name not in grouped:
            found = await _monitor_view(client, service.name, errors)
            if found is not None:
                live[service.name] = found
    traffic = await traffic_states(catalog, home)
    recent: list[FailureRecord] = []
    store_ok = True
    if failures is not None:
        try:
            recent = await asyncio.to_thread(failures)
        except StoreError as exc:
            errors.append(f"the store does not answer: {exc}")
            store_ok = False
    return Snapshot(time.time(), fleet, live, traffic, errors, recent, store_ok)


async def _monitor_view(client: Client, name: str, errors: list[str]) -> LiveService | None:
    try:
        status = await client.get_workflow_handle(monitor_id(name)).query(
            "status", result_type=MonitorStatus
        )
    except RPCError as exc:
        errors.append(f"{name}: no monitor answers ({exc.message})")
        return None
    tracks = {
        r.name: ReplicaTrack(
            state=r.state,
            consecutive_failures=r.consecutive_failures,
            latency_ms=r.latency_ms,
            last_error=r.last_error,
            since=r.since,
        )
        for r in status.replicas
    }
    return LiveService(status.primary, status.paused, tracks, {s.replica: s for s in status.sync})


class SnapshotCache:
    """Keeps the latest snapshot, refreshed every ``REFRESH_S`` by one background task."""

    def __init__(
        self,
        client: Client,
        catalog: Catalog,
        group_size: int,
        home: Path | None,
        failures: Callable[[], list[FailureRecord]] | None = None,
    ) -> None:
        self._client, self._catalog, self._group_size, self._home = (
            client,
            catalog,
            group_size,
            home,
        )
        self._failures = failures
        self._latest: Snapshot | None = None
        self._first = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start refreshing (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="drc-api-snapshot")

    async def stop(self) -> None:
        """Stop refreshing."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def get(self) -> Snapshot:
        """The latest snapshot (the first request waits for the first one)."""
        await self._first.wait()
        assert self._latest is not None
        return self._latest

    @property
    def latest(self) -> Snapshot | None:
        """The latest snapshot, or None before the first."""
        return self._latest

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self._latest = await take_snapshot(
                    self._client, self._catalog, self._group_size, self._home, self._failures
                )
            except (RPCError, RuntimeError, OSError) as exc:  # the loop's boundary
                log.warning("snapshot not refreshed: %s", exc)
                if self._latest is None:
                    self._latest = Snapshot(time.time(), None, {}, {}, [f"no snapshot: {exc}"])
            self._first.set()
            await asyncio.sleep(max(0.0, REFRESH_S - (time.monotonic() - started)))


def traffic_role(service: Service, replica: str, snapshot: Snapshot) -> tuple[str, str | None]:
    """The replica's role and what HAProxy does with it (a backup server is a standby)."""
    primary = snapshot.primary(service)
    if service.redundancy is Redundancy.ACTIVE_STANDBY:
        role = "primary" if replica == primary else "standby"
    else:
        role = "active"
    admin = snapshot.traffic.get((backend_name(service.name), server_name(replica)))
    if admin == "ready":
        return role, "standby" if role == "standby" else "serving"
    return role, admin

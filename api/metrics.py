"""``GET /metrics`` of the API: the fleet's view as Prometheus gauges, read from the snapshot.

Counters and histograms of what drc does (detections, repairs, probe latency, replication
lag) are the workers' own, served by each worker's SDK runtime exporter
(``DRC_METRICS_ADDRESS``); the API adds what only the whole view knows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.app import ApiContext
from api.views import service_health

router = APIRouter()

SYSTEM_STATES = ("healthy", "degraded", "critical", "unknown")
SERVICE_STATES = ("healthy", "degraded", "down", "paused", "unknown")


class FleetCollector(Collector):
    """Gauges from the API's latest snapshot (nothing is read at scrape time)."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One family per gauge; empty before the first snapshot."""
        snap = self._ctx.snapshots.latest
        if snap is None:
            return
        fleet = snap.fleet
        system = GaugeMetricFamily(
            "drc_system_health",
            "1 for the system's health now, 0 for the others.",
            labels=["state"],
        )
        now = fleet.system_health if fleet is not None else "unknown"
        for state in SYSTEM_STATES:
            system.add_metric([state], 1.0 if state == now else 0.0)
        yield system
        yield GaugeMetricFamily(
            "drc_failure_rate",
            "Share of services down (the system-wide failure rate).",
            value=fleet.failure_rate if fleet is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "drc_open_incidents",
            "Incidents open now.",
            value=len(fleet.incidents) if fleet is not None else 0,
        )
        services = GaugeMetricFamily(
            "drc_service_health",
            "1 for each service's health now, 0 for the other states.",
            labels=["service", "state"],
        )
        replicas = GaugeMetricFamily(
            "drc_replica_up",
            "1 while a replica answers its heartbeats (healthy, degraded or suspect).",
            labels=["service", "replica", "region"],
        )
        for service in self._ctx.catalog.services:
            health = service_health(service, snap)
            for state in SERVICE_STATES:
                services.add_metric([service.name, state], 1.0 if state == health else 0.0)
            for replica in service.replicas:
                state = snap.replica_state(service.name, replica.name).value
                up = state in ("healthy", "degraded", "suspect")
                replicas.add_metric([service.name, replica.name, replica.region], float(up))
        yield services
        yield replicas
        yield GaugeMetricFamily(
            "drc_api_snapshot_age_seconds",
            "How old the API's live view is.",
            value=max(0.0, time.time() - snap.taken_at),
        )


def registry_for(ctx: ApiContext) -> CollectorRegistry:
    """A registry of the fleet's gauges (one per app, not the process-global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(ctx))
    return registry


@router.get("/metrics", tags=["metrics"], response_class=Response)
async def get_metrics(request: Request) -> Response:
    """Prometheus text exposition of the fleet's gauges."""
    ctx: ApiContext = request.app.state.drc
    registry = getattr(request.app.state, "registry", None)
    if registry is None:
        registry = request.app.state.registry = registry_for(ctx)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

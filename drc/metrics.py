"""drc's Prometheus metrics: every name, unit, label and bucket, in one place.

They are recorded through the Temporal SDK's metric meter (``workflow.metric_meter()`` in
workflows, which records nothing while a workflow replays; ``activity.metric_meter()`` in
activities), so they leave the worker through the same Prometheus exporter as the SDK's own
``temporal_*`` metrics (``workers/telemetry.py``), at ``http://$DRC_METRICS_ADDRESS/metrics``.

The exporter, not this module, finishes the names, as the SDK's own metrics need: it appends
``_total`` to every counter and the unit's suffix (``_seconds``) to every histogram, but
nothing to a gauge (temporalio 1.35, read and measured: a counter named ``..._total`` comes out
``..._total_total``, a float histogram of unit ``s`` as ``..._s``). So each ``Metric`` holds the
base name it is created with and the ``exposed`` name a scrape shows; bucket overrides are
keyed by the base name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from temporalio.common import (
    MetricCounter,
    MetricGaugeFloat,
    MetricHistogramFloat,
    MetricMeter,
)

Kind = Literal["counter", "histogram", "gauge"]

SECONDS = "seconds"
"""The unit of every duration: the exporter appends it as ``_seconds``."""


@dataclass(frozen=True)
class Metric:
    """One drc metric: what it is created as, and what a scrape of the worker shows."""

    name: str
    """The name given to the SDK's meter."""
    kind: Kind
    description: str
    labels: tuple[str, ...]
    """Label names drc sets (the SDK adds ``namespace``, ``task_queue``, ``workflow_type`` or
    ``activity_type``, and ``service_name``)."""
    unit: str | None = None
    buckets: tuple[float, ...] | None = None
    """Histogram bucket bounds, in the unit (the SDK's defaults otherwise)."""

    @property
    def exposed(self) -> str:
        """The metric's name on ``/metrics`` (a histogram's series add _bucket/_sum/_count)."""
        if self.kind == "counter":
            return f"{self.name}_total"
        if self.kind == "histogram" and self.unit:
            return f"{self.name}_{self.unit}"
        return self.name

    def attributes(self, **labels: str) -> dict[str, str | int | float | bool]:
        """The label set of one series; exactly this metric's labels, or ValueError."""
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, not {tuple(labels)}")
        return dict(labels)


DETECTIONS = Metric(
    "drc_detections",
    "counter",
    "Problems the monitors detected: a replica failed or degraded, a standby fell out of "
    "sync, a failure the other vantage points did not confirm.",
    ("service", "kind", "severity"),
)
REPAIRS = Metric(
    "drc_repairs",
    "counter",
    "Repair runs (restarts and runbooks) that ended, by how they ended.",
    ("service", "runbook", "outcome"),
)
REPAIR_DURATION = Metric(
    "drc_repair_duration",
    "histogram",
    "From the decision to repair to the repair's end, as the monitor saw it.",
    ("service", "runbook", "outcome"),
    SECONDS,
    # Restarts and failovers take a tenth of a second to a few seconds here; a minute is
    # already a repair waiting on a health timeout.
    (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
PROBE_LATENCY = Metric(
    "drc_probe_latency",
    "histogram",
    "Latency of each probe of a replica, as the watch measured it (a timeout counts its "
    "budget, a refused connection its few microseconds: see the result label).",
    ("service", "replica", "probe", "result"),
    SECONDS,
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REPLICATION_LAG = Metric(
    # A gauge gets no unit suffix from the exporter: its name carries it.
    "drc_replication_lag_seconds",
    "gauge",
    "A standby's replication lag behind its primary at the last measurement (pt-heartbeat).",
    ("service", "replica"),
)

ALL: tuple[Metric, ...] = (DETECTIONS, REPAIRS, REPAIR_DURATION, PROBE_LATENCY, REPLICATION_LAG)


def histogram_buckets() -> dict[str, Sequence[float]]:
    """Bucket overrides for the exporter, keyed as it matches them (the base name)."""
    return {m.name: m.buckets for m in ALL if m.buckets is not None}


def counter(meter: MetricMeter, metric: Metric) -> MetricCounter:
    """``metric`` (a counter) on ``meter``."""
    assert metric.kind == "counter", metric
    return meter.create_counter(metric.name, metric.description, metric.unit)


def histogram(meter: MetricMeter, metric: Metric) -> MetricHistogramFloat:
    """``metric`` (a histogram of floats in its unit) on ``meter``."""
    assert metric.kind == "histogram", metric
    return meter.create_histogram_float(metric.name, metric.description, metric.unit)


def gauge(meter: MetricMeter, metric: Metric) -> MetricGaugeFloat:
    """``metric`` (a float gauge) on ``meter``."""
    assert metric.kind == "gauge", metric
    return meter.create_gauge_float(metric.name, metric.description, metric.unit)

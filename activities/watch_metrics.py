"""The watch's metrics: every probe's latency, every standby's replication lag.

The probe loop is the worker's hot path (thousands of probes a second at scale), so the metric
objects are created once per watch activity and each series (the metric with its labels bound)
once per replica: the SDK builds a new native label set on every ``with_additional_attributes``
and on every record that passes labels, which a cached series avoids.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.common import MetricGaugeFloat, MetricHistogramFloat, MetricMeter

from drc.metrics import PROBE_LATENCY, REPLICATION_LAG, gauge, histogram
from drc.model import ProbeResult


class WatchMetrics:
    """The metrics of one watch activity run (its meter labels them with the activity)."""

    def __init__(self, meter: MetricMeter) -> None:
        self.latency = histogram(meter, PROBE_LATENCY)
        self.lag = gauge(meter, REPLICATION_LAG)

    @classmethod
    def of_activity(cls) -> WatchMetrics:
        """On the running activity's meter (a no-op meter when the worker exports none)."""
        return cls(activity.metric_meter())

    def of_service(self, service: str) -> ServiceMetrics:
        """The series of ``service``'s replicas."""
        return ServiceMetrics(self, service)


NO_METRICS = WatchMetrics(MetricMeter.noop)
"""For a watch outside an activity (tests)."""


class ServiceMetrics:
    """One service's series, each bound to its labels on first use."""

    def __init__(self, metrics: WatchMetrics, service: str) -> None:
        self._metrics, self._service = metrics, service
        self._latency: dict[tuple[str, str, bool], MetricHistogramFloat] = {}
        self._lag: dict[str, MetricGaugeFloat] = {}

    def probed(self, replica: str, probe: str, result: ProbeResult) -> None:
        """Record one probe (``heartbeat`` or ``health``) of ``replica``."""
        key = (replica, probe, result.ok)
        series = self._latency.get(key)
        if series is None:
            labels = PROBE_LATENCY.attributes(
                service=self._service,
                replica=replica,
                probe=probe,
                result="ok" if result.ok else "error",
            )
            series = self._latency[key] = self._metrics.latency.with_additional_attributes(labels)
        series.record(max(result.latency_ms, 0.0) / 1000)

    def lagged(self, replica: str, lag_ms: float) -> None:
        """Set standby ``replica``'s replication lag (the SDK refuses a negative value)."""
        series = self._lag.get(replica)
        if series is None:
            labels = REPLICATION_LAG.attributes(service=self._service, replica=replica)
            series = self._lag[replica] = self._metrics.lag.with_additional_attributes(labels)
        series.set(max(lag_ms, 0.0) / 1000)

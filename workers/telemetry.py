"""The worker's Temporal SDK runtime, with its Prometheus exporter when metrics are asked for."""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from drc.metrics import histogram_buckets
from drc.settings import Settings


def prometheus_config(bind_address: str) -> PrometheusConfig:
    """The exporter's options, chosen for Prometheus' naming rules (base units, suffixes).

    Counters end in ``_total``; durations are seconds (not the SDK's default integer
    milliseconds) and say so with ``_seconds``: the SDK's own ``temporal_*`` metrics as much
    as drc's (``drc/metrics.py``), which take their suffixes from these same options.
    """
    return PrometheusConfig(
        bind_address=bind_address,
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides=histogram_buckets(),
    )


def worker_runtime(settings: Settings) -> Runtime | None:
    """A runtime serving ``http://<metrics_address>/metrics``; None (the SDK's own) if unset.

    Create one per process: it binds the address at once, and raises ValueError naming
    ``DRC_METRICS_ADDRESS`` if the address is malformed or taken.
    """
    if not settings.metrics_address:
        return None
    try:
        return Runtime(
            telemetry=TelemetryConfig(metrics=prometheus_config(settings.metrics_address))
        )
    except ValueError as exc:
        raise ValueError(
            f"cannot serve metrics at DRC_METRICS_ADDRESS={settings.metrics_address}: {exc}"
        ) from exc

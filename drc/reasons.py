"""The sentence of every detector transition, with the numbers that made it (style habit 8).

``"og-a is degraded: heartbeat 212.0 ms, 3 slow in a row (baseline 2.1 ms ± 0.4 ms, limit
50.0 ms)"``, ``"og-a is degraded: 6 of its last 20 probes failed (30 %, limit 20 %)"``. Pure.
"""

from __future__ import annotations

from drc import baseline
from drc.catalog import Thresholds
from drc.conditions import FAILED_PROBE, Condition
from drc.model import ReplicaState, ReplicaTrack


def transition_reason(
    replica: str,
    track: ReplicaTrack,
    new: ReplicaState,
    condition: Condition | None,
    thresholds: Thresholds,
) -> str:
    """Why ``replica`` goes from ``track.state`` to ``new``; ``track`` is still the old state."""
    if new is ReplicaState.FAILED and track.dead is not None:
        return (
            f"{replica} missed {_heartbeats(track.consecutive_failures)} "
            f"(last error: {track.last_error}) and {track.dead}: dead, not a blip"
        )
    if new is ReplicaState.FAILED:
        return (
            f"{replica} missed {track.consecutive_failures} heartbeats in a row "
            f"(last error: {track.last_error})"
        )
    if new is ReplicaState.DEGRADED:
        again = "is still degraded, now" if track.state is ReplicaState.DEGRADED else "is degraded"
        return f"{replica} {again}: {degradation(track, condition, thresholds)}"
    if track.state is ReplicaState.DEGRADED:
        return (
            f"{replica} recovered from degradation after {track.consecutive_clean} clean "
            f"probes{_recovered(track, thresholds)}"
        )
    return (
        f"{replica} answered {track.consecutive_successes} heartbeats in a row "
        f"({_ms(track.latency_ms)})"
    )


def degradation(track: ReplicaTrack, condition: Condition | None, thresholds: Thresholds) -> str:
    """The numbers behind a degradation by ``condition``."""
    if condition is Condition.ERROR_RATE:
        return errors(track, thresholds)
    if condition is Condition.HEALTH:
        return f"health check failing: {track.health_error}"
    latency = track.latency_ms or 0.0
    learned = baseline.describe(track, thresholds)
    if baseline.above_absolute(latency, thresholds) or learned is None:
        limit = thresholds.latency_degraded_ms
        return f"heartbeat latency {_ms(track.latency_ms)} above {limit or 0:g} ms"
    return f"heartbeat {latency:.1f} ms, {track.consecutive_slow} slow in a row ({learned})"


def errors(track: ReplicaTrack, thresholds: Thresholds) -> str:
    """``"6 of its last 20 probes failed (30 %, limit 20 %)"``."""
    window = track.error_window[-thresholds.error_rate_window :]
    failed = window.count(FAILED_PROBE)
    share = failed / len(window) if window else 0.0
    limit = thresholds.error_rate_max or 0.0
    return (
        f"{failed} of its last {len(window)} probes failed "
        f"({share * 100:.0f} %, limit {limit * 100:g} %)"
    )


def _recovered(track: ReplicaTrack, thresholds: Thresholds) -> str:
    """How a recovered replica looks now, for the condition it recovered from."""
    if track.condition == Condition.ERROR_RATE:
        return f": {errors(track, thresholds)}"
    learned = baseline.describe(track, thresholds)
    if track.condition == Condition.LATENCY and learned is not None:
        return f": heartbeat {_ms(track.latency_ms)} ({learned})"
    return ""


def _heartbeats(count: int) -> str:
    return "a heartbeat" if count == 1 else f"{count} heartbeats in a row"


def _ms(value: float | None) -> str:
    return "no latency yet" if value is None else f"{value:.1f} ms"

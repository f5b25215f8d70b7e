"""A replica's normal heartbeat latency, learned the way TCP learns a round-trip time.

RFC 6298's estimator, per replica: ``baseline ← baseline + α·(sample − baseline)`` and
``deviation ← deviation + β·(|sample − baseline| − deviation)``, with α = 1/8 and β = 1/4,
started at ``baseline = sample`` and ``deviation = sample / 2``. It learns only from clean
samples (an answered heartbeat with nothing wrong), so a degradation never teaches it that
slowness is normal; a slow drift within the limit is followed, a step is not. Pure: the state
lives in the ``ReplicaTrack`` fields ``latency_baseline_ms``, ``latency_deviation_ms`` and
``latency_samples``.

Two choices, both catalog fields (``Thresholds``). The floor (50 ms) is above what the prober
adds by itself: heartbeats of idle demo replicas, probed every 250 ms by ``HttpProber`` on a
machine busy with the integration tests, took p50 1.5 ms, p99 13 ms, p99.9 24 ms, at most
39 ms; a 5 ms floor saw three slow in a row within two minutes on five replicas, i.e. a false
degradation. Re-learning: slow samples never teach the baseline, except after
``latency_baseline_relearn_s`` (1 h) of nothing else: then the shift is taken as the new normal,
the baseline moves to it within a few samples and the replica recovers, with the new baseline
in the recovery's sentence. Null keeps a replica degraded until its latency comes back.
"""

from __future__ import annotations

from drc.catalog import Thresholds
from drc.model import ReplicaTrack

ALPHA = 1 / 8
"""Gain of the baseline (RFC 6298's α): a sample moves it an eighth of the way."""

BETA = 1 / 4
"""Gain of the deviation (RFC 6298's β)."""


def limit_ms(track: ReplicaTrack, thresholds: Thresholds) -> float | None:
    """The latency above which a heartbeat is slow by the baseline; None while it cannot judge.

    ``max(baseline + k × deviation, ratio × baseline, floor)``: the deviation term is TCP's
    retransmission timeout; the ratio keeps a very steady service (deviation near 0) from being
    called slow on jitter; the floor keeps the prober's own scheduling noise from being blamed
    on the service. None when the baseline is off or has fewer than ``min_samples`` samples.
    """
    base = track.latency_baseline_ms
    if (
        not thresholds.latency_baseline
        or base is None
        or track.latency_samples < thresholds.latency_baseline_min_samples
    ):
        return None
    return max(
        base + thresholds.latency_baseline_k * track.latency_deviation_ms,
        base * thresholds.latency_baseline_ratio,
        thresholds.latency_baseline_floor_ms,
    )


def above_absolute(latency_ms: float, thresholds: Thresholds) -> bool:
    """Whether ``latency_ms`` is above the catalog's absolute ``latency_degraded_ms``."""
    limit = thresholds.latency_degraded_ms
    return limit is not None and latency_ms > limit


def is_slow(latency_ms: float, track: ReplicaTrack, thresholds: Thresholds) -> bool:
    """Whether a heartbeat that took ``latency_ms`` is slow: above the absolute or learned limit.

    Judged against the baseline as it stood before this sample.
    """
    learned = limit_ms(track, thresholds)
    return above_absolute(latency_ms, thresholds) or (learned is not None and latency_ms > learned)


def learn(track: ReplicaTrack, latency_ms: float) -> None:
    """Fold one sample into the baseline; the caller decides that the sample may teach it."""
    base = track.latency_baseline_ms
    if base is None:
        track.latency_baseline_ms, track.latency_deviation_ms = latency_ms, latency_ms / 2
    else:
        dev = track.latency_deviation_ms
        track.latency_deviation_ms = dev + BETA * (abs(latency_ms - base) - dev)
        track.latency_baseline_ms = base + ALPHA * (latency_ms - base)
    track.latency_samples += 1


def describe(track: ReplicaTrack, thresholds: Thresholds) -> str | None:
    """``"baseline 2.1 ms ± 0.4 ms, limit 50.0 ms"``, or None while the baseline cannot judge."""
    limit = limit_ms(track, thresholds)
    if limit is None or track.latency_baseline_ms is None:
        return None
    return (
        f"baseline {track.latency_baseline_ms:.1f} ms ± {track.latency_deviation_ms:.1f} ms, "
        f"limit {limit:.1f} ms"
    )

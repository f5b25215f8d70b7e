"""State-sync tracking: lag samples in, a per-replica sync condition out (pure, no I/O).

A standby is ``in_sync`` while its measured replication lag stays within the threshold and
``sync_degraded`` after ``bad_after`` consecutive samples above it or unmeasurable (a paused
replica, a broken link); it is back in sync after ``good_after`` good samples (hysteresis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WINDOW = 600  # samples kept for the percentiles: 10 minutes at one a second


@dataclass
class ConsistencySummary:
    """The last sampled key comparison of a standby with its primary."""

    ok: bool
    checked: int
    missing: int
    mismatched: int
    offsets_equal: bool
    at: float
    detail: str


@dataclass
class SyncStats:
    """Everything drc knows about one standby's replication; carried in the watch heartbeat."""

    replica: str
    primary: str
    state: str = "unknown"  # unknown | in_sync | sync_degraded
    lags_ms: list[float] = field(default_factory=list)
    last_lag_ms: float | None = None
    primary_offset: int = -1
    replica_offset: int = -1
    link_up: bool = False
    last_error: str | None = None
    bad_run: int = 0
    good_run: int = 0
    since: float = 0.0
    consistency: ConsistencySummary | None = None

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) of the recent lags, nearest rank; None without samples."""
        if not self.lags_ms:
            return None
        ordered = sorted(self.lags_ms)
        rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[rank]


@dataclass(frozen=True)
class SyncEvent:
    """A standby's sync condition changed, with the sentence that says why."""

    replica: str
    state: str
    reason: str
    at: float


def observe(
    stats: SyncStats,
    lag_ms: float | None,
    primary_offset: int,
    replica_offset: int,
    link_up: bool,
    error: str | None,
    threshold_ms: float,
    now: float,
    bad_after: int = 3,
    good_after: int = 2,
) -> SyncEvent | None:
    """Record one lag sample; return the event when the standby's condition changes."""
    stats.last_lag_ms, stats.link_up, stats.last_error = lag_ms, link_up, error
    stats.primary_offset, stats.replica_offset = primary_offset, replica_offset
    if lag_ms is not None:
        stats.lags_ms = [*stats.lags_ms[-(WINDOW - 1) :], lag_ms]
    good = lag_ms is not None and lag_ms <= threshold_ms and link_up
    stats.good_run, stats.bad_run = (stats.good_run + 1, 0) if good else (0, stats.bad_run + 1)
    if stats.state != "sync_degraded" and stats.bad_run >= bad_after:
        return _change(stats, "sync_degraded", _why_bad(stats, threshold_ms), now)
    if stats.state != "in_sync" and stats.good_run >= good_after:
        lag = f"{lag_ms:.2f} ms" if lag_ms is not None else "?"
        return _change(
            stats, "in_sync", f"{stats.replica} in sync with {stats.primary} (lag {lag})", now
        )
    return None


def _why_bad(stats: SyncStats, threshold_ms: float) -> str:
    gap = stats.primary_offset - stats.replica_offset
    if stats.last_lag_ms is None:
        what = f"lag unmeasurable ({stats.last_error or 'no answer'})"
    else:
        what = f"lag {stats.last_lag_ms:.1f} ms above {threshold_ms:g} ms"
    link = "up" if stats.link_up else "down"
    return (
        f"{stats.replica} is behind {stats.primary}: {what} for {stats.bad_run} samples, "
        f"offset gap {gap} bytes, link {link}"
    )


def _change(stats: SyncStats, state: str, reason: str, now: float) -> SyncEvent:
    stats.state, stats.since = state, now
    return SyncEvent(stats.replica, state, reason, now)

"""State-sync tracking: lag samples in, a per-standby sync condition out (pure, no I/O).

A standby is ``in_sync`` while its measured replication lag stays within the threshold and
``sync_degraded`` after ``bad_after`` consecutive samples above it or unmeasurable (a paused
replica, a broken link); it is back in sync after ``good_after`` good samples (hysteresis).

A sample taken while the *primary* does not answer says nothing about the standby's lag: it
neither degrades nor restores the standby. The last sample taken while the primary answered is
kept (``last_alive``): when the primary dies, the standby is judged by it (design notes,
"dead vs unreachable"), together with the offset the standby itself reports since.
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


@dataclass(frozen=True)
class SyncSample:
    """One measurement of a standby against its primary, as the watch took it."""

    lag_ms: float | None
    primary_offset: int
    replica_offset: int
    link_up: bool
    error: str | None = None
    primary_reachable: bool = True
    """False when the primary did not answer: the other fields are the standby's own view."""
    link_down_since_s: float | None = None
    replid: str = ""


@dataclass
class AliveSample:
    """The last sample of a standby taken while its primary still answered."""

    at: float
    lag_ms: float | None
    link_up: bool
    primary_offset: int
    replica_offset: int
    state: str
    """The standby's sync condition right after that sample."""


@dataclass
class SyncStats:
    """Everything drc knows about one standby's replication; carried in the watch heartbeat."""

    replica: str
    primary: str
    state: str = "unknown"  # unknown | in_sync | sync_degraded
    lags_ms: list[float] = field(default_factory=list)
    measured: int = 0
    """Lag samples measured so far; ``lags_ms`` keeps the latest ``WINDOW`` of them."""
    last_lag_ms: float | None = None
    primary_offset: int = -1
    replica_offset: int = -1
    link_up: bool = False
    last_error: str | None = None
    bad_run: int = 0
    good_run: int = 0
    since: float = 0.0
    consistency: ConsistencySummary | None = None
    primary_reachable: bool = True
    last_alive: AliveSample | None = None
    link_down_since_s: float | None = None

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
    sample: SyncSample,
    threshold_ms: float,
    now: float,
    bad_after: int = 3,
    good_after: int = 2,
) -> SyncEvent | None:
    """Record one sample; return the event when the standby's condition changes."""
    stats.replica_offset, stats.link_up = sample.replica_offset, sample.link_up
    stats.last_error, stats.link_down_since_s = sample.error, sample.link_down_since_s
    stats.primary_reachable = sample.primary_reachable
    if not sample.primary_reachable:
        # "Unmeasurable because the primary is dead" is never a verdict on the standby.
        stats.last_lag_ms = None
        return None
    stats.last_lag_ms, stats.primary_offset = sample.lag_ms, sample.primary_offset
    if sample.lag_ms is not None:
        stats.lags_ms = [*stats.lags_ms[-(WINDOW - 1) :], sample.lag_ms]
        stats.measured += 1
    good = sample.lag_ms is not None and sample.lag_ms <= threshold_ms and sample.link_up
    # A standby that says its link is down and did not show the heartbeat is not replicating:
    # a fact, not a slow sample, so it is judged at once (waiting out three timeouts left a
    # broken standby "in sync", and eligible, for ~4 s).
    broken = not sample.link_up and sample.lag_ms is None
    stats.good_run, stats.bad_run = (stats.good_run + 1, 0) if good else (0, stats.bad_run + 1)
    event = None
    if stats.state != "sync_degraded" and (stats.bad_run >= bad_after or broken):
        event = _change(stats, "sync_degraded", _why_bad(stats, threshold_ms), now)
    elif stats.state != "in_sync" and stats.good_run >= good_after:
        lag = f"{sample.lag_ms:.2f} ms" if sample.lag_ms is not None else "?"
        reason = f"{stats.replica} in sync with {stats.primary} (lag {lag})"
        event = _change(stats, "in_sync", reason, now)
    stats.last_alive = AliveSample(
        now,
        sample.lag_ms,
        sample.link_up,
        sample.primary_offset,
        sample.replica_offset,
        stats.state,
    )
    return event


@dataclass(frozen=True)
class Fitness:
    """Whether a standby may be promoted without losing acknowledged writes, and why."""

    ok: bool
    reason: str
    offset: int
    """How far the standby has got (its replication offset); ranks several fit standbys."""


def fitness(
    stats: SyncStats | None,
    replica: str,
    limit_ms: float,
    primary_alive: bool,
    max_lag_ms: float = 0.0,
) -> Fitness:
    """Judge a standby for promotion from what drc measured (pure).

    While the primary answers: a standby that is not ``sync_degraded`` is fit (the runbook's
    caught-up guard then waits for equal offsets). Once the primary stops answering, the last
    sample taken while it was alive decides: the link was up, the standby was not degraded
    and its lag was within ``limit_ms``; and, if the standby has been read since the primary
    died, its offset has reached the one the primary had in that sample (or that sample's lag
    was within ``max_lag_ms``, the loss the service accepts). Without such a read the offset
    is left to the runbook's guard, which reads it live.
    """
    if stats is None:
        return Fitness(False, f"{replica}'s replication has not been measured yet", -1)
    if primary_alive:
        if stats.state == "sync_degraded":
            return Fitness(False, _why_bad(stats, limit_ms), stats.replica_offset)
        if stats.state == "in_sync":
            return Fitness(True, f"{replica} is in sync", stats.replica_offset)
        why = f"{replica}'s replication is not judged yet (the caught-up guard decides)"
        return Fitness(True, why, stats.replica_offset)
    return _fitness_after_death(stats, limit_ms, max_lag_ms)


def _fitness_after_death(stats: SyncStats, limit_ms: float, max_lag_ms: float) -> Fitness:
    name, primary, seen = stats.replica, stats.primary, stats.last_alive
    if seen is None:
        why = f"{name} was never measured while {primary} answered"
        return Fitness(False, why, stats.replica_offset)
    when = f"when {primary} last answered"
    if not seen.link_up:
        why = f"{name}'s replication link was already down {when}"
        return Fitness(False, why, stats.replica_offset)
    if seen.state == "sync_degraded" or seen.lag_ms is None or seen.lag_ms > limit_ms:
        lag = "unmeasurable" if seen.lag_ms is None else f"{seen.lag_ms:.1f} ms"
        why = f"{name} was already behind {when} (lag {lag}, limit {limit_ms:g} ms)"
        return Fitness(False, why, stats.replica_offset)
    in_sync = f"{name} was in sync {when} (link up, lag {seen.lag_ms:.1f} ms)"
    if stats.primary_reachable:  # not read since the death: the guard reads the offset live
        return Fitness(True, f"{in_sync}; its offset is checked live", seen.replica_offset)
    holds = f"holds offset {stats.replica_offset}"
    if stats.replica_offset >= seen.primary_offset:
        return Fitness(
            True, f"{in_sync} and {holds} (≥ {seen.primary_offset})", stats.replica_offset
        )
    if 0 < max_lag_ms and seen.lag_ms <= max_lag_ms:  # a loss the catalog accepts
        why = f"{in_sync} and {holds}, behind by at most max_lag_on_failover {max_lag_ms:g} ms"
        return Fitness(True, why, stats.replica_offset)
    why = f"{name} {holds}, below the {seen.primary_offset} {primary} had {when}"
    return Fitness(False, why, stats.replica_offset)


def _why_bad(stats: SyncStats, threshold_ms: float) -> str:
    gap = stats.primary_offset - stats.replica_offset
    if stats.last_lag_ms is None:
        what = f"lag unmeasurable ({stats.last_error or 'no answer'})"
    else:
        what = f"lag {stats.last_lag_ms:.1f} ms above {threshold_ms:g} ms"
    link = "up" if stats.link_up else "down"
    samples = f"{stats.bad_run} sample" + ("s" if stats.bad_run != 1 else "")
    return (
        f"{stats.replica} is behind {stats.primary}: {what} for {samples}, "
        f"offset gap {gap} bytes, link {link}"
    )


def _change(stats: SyncStats, state: str, reason: str, now: float) -> SyncEvent:
    stats.state, stats.since = state, now
    return SyncEvent(stats.replica, state, reason, now)

"""A sync-lag probe judging a recovery reads the latest few lags measured since the recovery
watch began: the standby's catch-up after a rollback (375 ms, once) is not held against it for
the hypothesis' 20 samples (CI saw a replication-break run 'recover' after 21 s that way, its
monitor back in sync 2 s after the rollback)."""

from __future__ import annotations

from activities.chaos_observe import judge_sync_lag, sync_key
from drc.chaos import SteadyProbe
from drc.model import ServiceState
from drc.status import MonitorStatus
from drc.sync import SyncSample, SyncStats, observe

PROBE = SteadyProbe("in-sync", "sync-lag", service="order-state", below_ms=100.0, samples=20)


def _status() -> MonitorStatus:
    return MonitorStatus("order-state", ServiceState.HEALTHY, "active-standby", False, [], [])


def _standby(lags: list[float]) -> SyncStats:
    stats = SyncStats("redis-c", "redis-a")
    for i, lag in enumerate(lags):
        observe(stats, SyncSample(lag, 100 + i, 100 + i, True), 100.0, float(i))
    return stats


def test_every_measured_lag_is_counted() -> None:
    stats = _standby([1.0, 2.0, 3.0])
    assert stats.measured == 3 and stats.lags_ms == [1.0, 2.0, 3.0]


def test_a_catch_up_sample_fails_the_plain_window_for_its_samples() -> None:
    stats = _standby([2.0] * 5 + [640.0] + [2.0] * 5)
    outcome = judge_sync_lag(PROBE, _status(), [stats])
    assert not outcome.ok and "p99 640.0 ms" in outcome.detail


def test_the_recovery_window_starts_at_the_mark() -> None:
    stats = _standby([2.0] * 5 + [640.0])
    mark = {sync_key("order-state", "redis-c"): stats.measured}
    waiting = judge_sync_lag(PROBE, _status(), [stats], mark)
    assert not waiting.ok and "no lag measured since: redis-c" in waiting.detail
    for lag in (3.0, 2.5):
        observe(stats, SyncSample(lag, 1, 1, True), 100.0, 10.0)
    recovered = judge_sync_lag(PROBE, _status(), [stats], mark)
    assert recovered.ok, recovered.detail
    assert "p99 3.0 ms" in recovered.detail and "since the recovery watch began" in recovered.detail


def test_the_catch_up_after_the_mark_counts_until_three_newer_lags() -> None:
    stats = _standby([2.0] * 5)
    mark = {sync_key("order-state", "redis-c"): stats.measured}
    for lag in (375.0, 2.0, 2.0):
        observe(stats, SyncSample(lag, 1, 1, True), 100.0, 10.0)
    assert not judge_sync_lag(PROBE, _status(), [stats], mark).ok
    observe(stats, SyncSample(1.5, 1, 1, True), 100.0, 11.0)
    recovered = judge_sync_lag(PROBE, _status(), [stats], mark)
    assert recovered.ok and "over the last 3 samples" in recovered.detail, recovered.detail
    assert not judge_sync_lag(PROBE, _status(), [stats]).ok  # the steady state's window of 20


def test_a_standby_out_of_sync_fails_whatever_its_lags() -> None:
    stats = _standby([2.0] * 5)
    stats.state = "sync_degraded"
    outcome = judge_sync_lag(PROBE, _status(), [stats], {})
    assert not outcome.ok and "not in sync: redis-c" in outcome.detail

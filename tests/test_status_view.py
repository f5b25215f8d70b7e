"""``drc status``: the watch's live counters over the monitor's view, never an older state."""

from __future__ import annotations

from drc.model import ReplicaState, ReplicaTrack, ServiceState
from drc.status import MonitorStatus, ReplicaStatus
from workers.status import _refresh


def _status(state: ReplicaState, since: float) -> MonitorStatus:
    replica = ReplicaStatus("md-a", "ldn", "http://127.0.0.1:1", state, 1.0, 0, None, since)
    return MonitorStatus(
        "market-data", ServiceState.DEGRADED, "active-active", False, [replica], []
    )


def test_a_live_track_older_than_the_monitors_state_does_not_hide_it() -> None:
    status = _status(ReplicaState.DEGRADED, since=200.0)
    stale = ReplicaTrack(state=ReplicaState.HEALTHY, since=100.0, latency_ms=1.0)
    _refresh(status, {"md-a": stale})
    assert status.replicas[0].state is ReplicaState.DEGRADED


def test_a_newer_live_track_refreshes_state_and_counters() -> None:
    status = _status(ReplicaState.HEALTHY, since=100.0)
    newer = ReplicaTrack(
        state=ReplicaState.HEALTHY, since=100.0, latency_ms=7.5, consecutive_failures=1
    )
    _refresh(status, {"md-a": newer})
    replica = status.replicas[0]
    assert replica.latency_ms == 7.5 and replica.state is ReplicaState.SUSPECT

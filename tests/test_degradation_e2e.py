"""Degradation end to end: real Temporal, supervisord, HAProxy and demo services, real worker.

The demo's fault switch (demo/services/faults.py) makes md-a slow or makes it fail part of its
requests; drc must call it degraded, with the numbers, and never repair it for that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drc.catalog import Catalog, ProbeSettings
from drc.model import ReplicaState, ReplicaTrack, ServiceState, Transition
from drc.names import monitor_id
from drc.status import MonitorStatus
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, demo_like_catalog, running_drc
from workers.status import group_progress
from workflows.monitor import ServiceMonitorWorkflow

pytestmark = pytest.mark.integration

WATCH_HEARTBEAT_LAG_S = 4.0

SERVICE, REPLICA = "market-data", "md-a"

SLOW_PROBES = ProbeSettings(
    interval_ms=500, timeout_ms=450, failure_threshold=3, recovery_threshold=2, health_every=4
)
"""The demo's probes time out at 200 ms: a heartbeat 200 ms slower there is a miss, not a slow
answer. These leave room for it, so slowness is judged as slowness."""


def _with_probes(catalog: Catalog, probe: ProbeSettings) -> Catalog:
    services = tuple(s.model_copy(update={"probe": probe}) for s in catalog.services)
    return catalog.model_copy(update={"services": services})


async def _up(tmp_path: Path, catalog: Catalog) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path, catalog) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


@pytest.fixture
async def slow_probed(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async for stack in _up(tmp_path, _with_probes(demo_like_catalog(), SLOW_PROBES)):
        yield stack


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async for stack in _up(tmp_path, demo_like_catalog()):
        yield stack


async def _all_healthy(stack: DrcStack) -> None:
    states = {s.name: s.state for s in (await stack.status()).values()}
    assert set(states.values()) == {ServiceState.HEALTHY}, states


async def _monitor(stack: DrcStack) -> MonitorStatus:
    """The monitor's own ``status`` query (its state as of the last transition it applied)."""
    handle = stack.client.get_workflow_handle_for(ServiceMonitorWorkflow.run, monitor_id(SERVICE))
    return await handle.query(ServiceMonitorWorkflow.status)


def _state(status: MonitorStatus) -> ReplicaState:
    return next(r.state for r in status.replicas if r.name == REPLICA)


def _reasons(status: MonitorStatus) -> list[str]:
    return [d.reason for d in status.decisions if d.action == "transition" and d.replica == REPLICA]


async def _live_track(stack: DrcStack) -> ReplicaTrack:
    """md-a's track as the watch last heartbeated it (baseline included)."""
    status = await _monitor(stack)
    assert status.watch_group is not None
    progress = await group_progress(stack.client, status.watch_group)
    member = progress.members.get(SERVICE) if progress is not None else None
    assert member is not None, "no watch heartbeat with market-data yet"
    return member.tracks[REPLICA]


async def _last_transition(stack: DrcStack, condition: str) -> Transition:
    last = (await _monitor(stack)).last_transition
    assert last is not None and last.replica == REPLICA and last.condition == condition, last
    return last


async def _seen_degraded(stack: DrcStack) -> tuple[float, float]:
    """When md-a was first degraded in the monitor's status query, and in ``drc status``."""
    monitor = shown = 0.0
    deadline = time.monotonic() + 30
    while not (monitor and shown) and time.monotonic() < deadline:
        if not monitor and _state(await _monitor(stack)) is ReplicaState.DEGRADED:
            monitor = time.time()
        if not shown and (await stack.replica_status(SERVICE, REPLICA)).state == "degraded":
            shown = time.time()
        await asyncio.sleep(0.05)
    assert monitor and shown, "md-a never shown degraded"
    return monitor, shown


def _never_repaired(stack: DrcStack, pid: int, status: MonitorStatus) -> None:
    assert stack.pid(REPLICA) == pid, "md-a was restarted"
    repairs = [d for d in status.decisions if d.action.startswith(("restart", "failover", "drain"))]
    assert repairs == [] and status.repairs_running == [], repairs


async def test_a_slow_replica_is_degraded_against_its_baseline_and_recovers(
    slow_probed: DrcStack,
) -> None:
    drc, interval = slow_probed, SLOW_PROBES.interval_ms / 1000

    async def learned() -> ReplicaTrack:
        track = await _live_track(drc)
        assert track.latency_samples >= 20, track
        return track

    before = await assert_eventually(learned, timeout=60)
    pid = drc.pid(REPLICA)
    drc.platform.marker(f"{REPLICA}.latency").write_text("200")
    written = time.time()
    monitor, shown = await _seen_degraded(drc)
    last = await _last_transition(drc, "latency_degradation")
    detected = (last.at - written) / interval
    print(
        f"\nbaseline {before.latency_baseline_ms:.2f} ms ± {before.latency_deviation_ms:.2f} ms "
        f"({before.latency_samples} samples); marker written → detector's transition "
        f"{detected:.1f} intervals, → monitor's status {(monitor - written) / interval:.1f}, "
        f"→ `drc status` {(shown - written) / interval:.1f}\nreason: {last.reason}"
    )
    assert detected <= 10 and monitor - written <= 10 * interval
    # `drc status` overlays the watch's last heartbeat, which Temporal sends at most every
    # 0.8 × its 5 s timeout: it may show the state from before the monitor's, that long.
    assert shown - written <= 10 * interval + WATCH_HEARTBEAT_LAG_S
    assert (last.old, last.new, last.severity) == (ReplicaState.HEALTHY, "degraded", "medium")
    assert last.reason.startswith(f"{REPLICA} is degraded: heartbeat 2"), last.reason
    assert "3 slow in a row (baseline " in last.reason and "limit 50.0 ms)" in last.reason

    drc.platform.marker(f"{REPLICA}.latency").unlink()

    async def healthy_again() -> MonitorStatus:
        status = await _monitor(drc)
        assert _state(status) is ReplicaState.HEALTHY
        assert any("recovered from degradation" in r for r in _reasons(status)), status.decisions
        return status

    status = await assert_eventually(healthy_again, timeout=30)
    print(f"recovery: {_reasons(status)[-1]}")
    _never_repaired(drc, pid, status)


async def test_a_replica_failing_30_percent_of_requests_is_degraded_not_repaired(
    drc: DrcStack,
) -> None:
    interval = drc.catalog.services[0].probe.interval_ms / 1000
    pid = drc.pid(REPLICA)
    # Misses within startup_grace_s of a start are forgiven ("starting"), so not counted: wait
    # that out, to measure a running replica.
    info = drc.supervisor().getProcessInfo(REPLICA)
    grace = drc.catalog.services[0].probe.startup_grace_s
    await asyncio.sleep(max(0.0, grace - (info["now"] - info["start"])))
    drc.platform.marker(f"{REPLICA}.errors").write_text("0.3")
    written = time.time()

    last = await assert_eventually(lambda: _last_transition(drc, "error_rate_increase"), 60)
    print(
        f"\nmarker written → error_rate_increase {(last.at - written) / interval:.1f} intervals,"
        f" → in the monitor {(time.time() - written) / interval:.1f} intervals"
    )
    assert (last.new, last.severity) == (ReplicaState.DEGRADED, "high")
    assert "of its last 20 probes failed (" in last.reason and "limit 20 %)" in last.reason

    # Degraded, never failed: 60 probes later it is still serving, and nothing repaired it.
    deadline = time.monotonic() + 60 * interval
    while time.monotonic() < deadline:
        status = await _monitor(drc)
        assert _state(status) is ReplicaState.DEGRADED, status
        assert not any(" missed " in r for r in _reasons(status)), _reasons(status)
        await asyncio.sleep(0.5)
    assert status.state is ServiceState.DEGRADED
    _never_repaired(drc, pid, status)
    print("transitions: " + " | ".join(_reasons(status)))

    drc.platform.marker(f"{REPLICA}.errors").unlink()

    async def healthy_again() -> MonitorStatus:
        status = await _monitor(drc)
        assert _state(status) is ReplicaState.HEALTHY
        return status

    status = await assert_eventually(healthy_again, timeout=30)
    print(f"recovery: {_reasons(status)[-1]}")

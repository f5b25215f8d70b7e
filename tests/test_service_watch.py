"""One service's watch, tick by tick (activities/service_watch.py), with a scripted engine."""

from __future__ import annotations

import time

from activities.probes.ticker import Tick
from activities.service_watch import FAST_PROBES_PER_INTERVAL, ServiceWatch
from drc.catalog import Replica
from drc.model import ProbeResult, ReplicaState, ReplicaTrack
from tests.support.monitor_world import replica, service

SVC = service(
    {
        "name": "quotes",
        "redundancy": "active-active",
        "replicas": [replica("q-a"), replica("q-b")],
        "probe": {"interval_ms": 400, "timeout_ms": 100, "recovery_threshold": 2},
    }
)


class ScriptedEngine:
    """Answers heartbeats from a script; counts them per replica."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {"q-a": True, "q-b": False}
        self.beats: dict[str, int] = {"q-a": 0, "q-b": 0}

    async def heartbeat(self, r: Replica, timeout_ms: int) -> ProbeResult:
        self.beats[r.name] += 1
        ok = self.up[r.name]
        return ProbeResult(ok, 0.3, None if ok else "connection refused")

    async def health(self, r: Replica, timeout_ms: int) -> ProbeResult:
        return ProbeResult(True, 0.3)


def _watch(engine: ScriptedEngine) -> ServiceWatch:
    tracks = {
        "q-a": ReplicaTrack(state=ReplicaState.HEALTHY),
        "q-b": ReplicaTrack(state=ReplicaState.FAILED, consecutive_failures=3),
    }
    return ServiceWatch(SVC, tracks, {}, None, None, engine, None, None, time.time)  # type: ignore[arg-type]


async def test_a_failed_replica_that_answers_again_is_healthy_within_the_tick() -> None:
    engine = ScriptedEngine()
    watch = _watch(engine)
    engine.up["q-b"] = True
    started = time.monotonic()
    transitions, _ = await watch.tick(Tick(started, 0.0, 0))
    # Two good answers (the tick's and one quick re-probe) before the next tick was due.
    assert [(t.replica, t.new) for t in transitions] == [("q-b", ReplicaState.HEALTHY)]
    assert engine.beats == {"q-a": 1, "q-b": 2}, "only the failed replica is probed again"


async def test_a_replica_still_down_is_probed_again_but_the_tick_ends_in_time() -> None:
    engine = ScriptedEngine()
    watch = _watch(engine)
    started = time.monotonic()
    transitions, _ = await watch.tick(Tick(started, 0.0, 0))
    assert transitions == [] and engine.beats["q-a"] == 1
    # Probed again between ticks while failed, a quarter interval apart, and never into the
    # next tick's time: at most three more probes per tick.
    assert 2 <= engine.beats["q-b"] <= 1 + FAST_PROBES_PER_INTERVAL - 1, engine.beats


async def test_healthy_replicas_are_probed_once_per_tick() -> None:
    engine = ScriptedEngine()
    engine.up["q-b"] = True
    tracks = {n: ReplicaTrack(state=ReplicaState.HEALTHY) for n in ("q-a", "q-b")}
    watch = ServiceWatch(SVC, tracks, {}, None, None, engine, None, None, time.time)  # type: ignore[arg-type]
    await watch.tick(Tick(time.monotonic(), 0.0, 0))
    assert engine.beats == {"q-a": 1, "q-b": 1}


async def test_a_watch_that_ran_late_acts_on_nothing_until_it_is_back_in_time() -> None:
    engine = ScriptedEngine()
    tracks = {n: ReplicaTrack(state=ReplicaState.HEALTHY) for n in ("q-a", "q-b")}
    wall = [1_800_000_000.0]
    watch = ServiceWatch(SVC, tracks, {}, None, None, engine, None, None, lambda: wall[0])  # type: ignore[arg-type]
    engine.up["q-b"] = False  # q-b misses every heartbeat from now on
    transitions, _ = await watch.tick(Tick(time.monotonic(), 2.5, 6))  # a 2.5 s stall
    assert transitions == [] and engine.beats == {"q-a": 0, "q-b": 0}, "nothing probed"
    assert watch.tilt is not None and watch.tilt.startswith("the watch ran 2.50 s late")
    for _ in range(5):  # still within the quiet period: still nothing
        assert await watch.tick(Tick(time.monotonic(), 0.0, 0)) == ([], [])
    assert watch.tracks["q-b"].consecutive_failures == 0 and watch.tilt is not None


async def test_a_wall_clock_jump_tilts_the_watch() -> None:
    engine = ScriptedEngine()
    engine.up["q-b"] = True
    tracks = {n: ReplicaTrack(state=ReplicaState.HEALTHY) for n in ("q-a", "q-b")}
    wall = [1_800_000_000.0]
    watch = ServiceWatch(SVC, tracks, {}, None, None, engine, None, None, lambda: wall[0])  # type: ignore[arg-type]
    await watch.tick(Tick(time.monotonic(), 0.0, 0))
    assert watch.tilt is None and engine.beats == {"q-a": 1, "q-b": 1}
    wall[0] += 3600  # NTP stepped the clock an hour ahead
    await watch.tick(Tick(time.monotonic(), 0.0, 0))
    assert watch.tilt is not None and "wall clock jumped +3600" in watch.tilt
    assert engine.beats == {"q-a": 1, "q-b": 1}

"""The monitor's pure choices (drc.policy, drc.sync): each decision and its sentence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drc.model import ReplicaState, ReplicaTrack
from drc.policy import (
    ReplicaRepair,
    choose_standby,
    drain_verdict,
    primary_alive,
    restart_verdict,
)
from drc.sync import AliveSample, SyncSample, SyncStats, fitness, observe
from tests.support.monitor_world import GATEWAY, QUOTES, STATE, replica, service

HEALTHY = ReplicaState.HEALTHY


def tracks(**states: ReplicaState) -> dict[str, ReplicaTrack]:
    return {name.replace("_", "-"): ReplicaTrack(state=s) for name, s in states.items()}


def alive(lag: float | None = 1.0, link: bool = True, state: str = "in_sync", off: int = 500):
    return AliveSample(10.0, lag, link, off, off, state)


def stats(
    name: str = "redis-b",
    state: str = "in_sync",
    seen: AliveSample | None = None,
    reachable: bool = True,
    offset: int = 500,
) -> SyncStats:
    return SyncStats(
        replica=name,
        primary="redis-a",
        state=state,
        replica_offset=offset,
        primary_reachable=reachable,
        last_alive=seen,
    )


# --- sync judgement ---------------------------------------------------------------------------


def sample(
    lag: float | None, gap: int = 0, link: bool = True, reachable: bool = True
) -> SyncSample:
    return SyncSample(lag, 1000, 1000 - gap, link, None if lag is not None else "x", reachable)


def test_sync_hysteresis_needs_three_bad_and_two_good_samples() -> None:
    s = SyncStats(replica="b", primary="a", state="in_sync")
    bad = [observe(s, sample(500.0, gap=5), 100, t) for t in range(3)]
    assert bad[:2] == [None, None] and bad[2] is not None and bad[2].state == "sync_degraded"
    assert "lag 500.0 ms above 100 ms for 3 samples, offset gap 5 bytes" in bad[2].reason
    good = [observe(s, sample(1.0), 100, t) for t in range(3, 5)]
    assert good[0] is None and good[1] is not None and good[1].state == "in_sync"
    assert s.percentile(50) == 500.0 and s.percentile(99) == 500.0


def test_a_standby_whose_link_is_down_is_degraded_at_once() -> None:
    # Its primary answers, it says its link is down and it did not show the heartbeat: a fact.
    s = SyncStats(replica="b", primary="a", state="in_sync")
    event = observe(s, sample(None, gap=40, link=False), 100, 1)
    assert event is not None and event.state == "sync_degraded"
    assert event.reason.endswith("for 1 sample, offset gap 40 bytes, link down")
    slow = SyncStats(replica="b", primary="a", state="in_sync")
    assert observe(slow, sample(500.0, link=True), 100, 1) is None  # slow alone still waits


def test_samples_while_the_primary_is_dead_never_degrade_the_standby() -> None:
    s = SyncStats(replica="b", primary="a", state="in_sync")
    observe(s, sample(1.0), 100, 1)
    kept = s.last_alive
    events = [observe(s, sample(None, link=False, reachable=False), 100, t) for t in range(2, 20)]
    assert events == [None] * 18
    assert s.state == "in_sync" and s.bad_run == 0 and not s.primary_reachable
    assert s.last_alive == kept, "the last sample while the primary answered is kept"


def test_a_standby_in_sync_when_the_primary_died_is_fit() -> None:
    judged = fitness(stats(seen=alive(), reachable=False, offset=520), "redis-b", 100, False)
    assert judged.ok and judged.reason == (
        "redis-b was in sync when redis-a last answered (link up, lag 1.0 ms) and holds offset "
        "520 (≥ 500)"
    )


def test_a_standby_whose_link_was_down_before_the_death_is_unfit() -> None:
    judged = fitness(stats(seen=alive(None, link=False)), "redis-b", 100, False)
    assert not judged.ok
    assert judged.reason == "redis-b's replication link was already down when redis-a last answered"


def test_a_standby_behind_before_the_death_is_unfit() -> None:
    judged = fitness(stats(seen=alive(250.0, state="sync_degraded")), "redis-b", 100, False)
    assert judged.reason == (
        "redis-b was already behind when redis-a last answered (lag 250.0 ms, limit 100 ms)"
    )


def test_a_standby_below_the_primarys_last_offset_is_unfit() -> None:
    judged = fitness(stats(seen=alive(), reachable=False, offset=480), "redis-b", 100, False)
    assert judged.reason == (
        "redis-b holds offset 480, below the 500 redis-a had when redis-a last answered"
    )


def test_a_standby_never_measured_is_unfit() -> None:
    assert fitness(None, "redis-b", 100, False).reason == (
        "redis-b's replication has not been measured yet"
    )
    assert fitness(stats(), "redis-b", 100, False).reason == (
        "redis-b was never measured while redis-a answered"
    )


@given(
    lag=st.one_of(st.none(), st.floats(0, 1000)),
    link=st.booleans(),
    state=st.sampled_from(["unknown", "in_sync", "sync_degraded"]),
    offset=st.integers(0, 1000),
)
def test_a_dead_primarys_standby_is_fit_only_on_evidence(
    lag: float | None, link: bool, state: str, offset: int
) -> None:
    seen = alive(lag, link, state, off=500)
    judged = fitness(stats(seen=seen, reachable=False, offset=offset), "redis-b", 100, False)
    evidence = link and state != "sync_degraded" and lag is not None and lag <= 100
    assert judged.ok == (evidence and offset >= 500)


# --- standby choice ---------------------------------------------------------------------------


def test_the_healthy_standby_is_chosen() -> None:
    choice = choose_standby(GATEWAY, "og-a", tracks(og_a=ReplicaState.FAILED, og_b=HEALTHY), {})
    assert (choice.target, choice.reason) == ("og-b", "og-b is the healthy standby")


def test_no_healthy_standby_names_the_restart_that_overrides() -> None:
    failed = ReplicaState.FAILED
    choice = choose_standby(GATEWAY, "og-a", tracks(og_a=failed, og_b=failed), {})
    assert choice.target is None and choice.reason == "no healthy standby (og-b is failed)"
    assert choice.override == "drc restart order-gateway og-b"


def test_an_unfit_state_standby_is_refused_naming_force() -> None:
    t = tracks(redis_a=ReplicaState.FAILED, redis_b=HEALTHY)
    sync = {"redis-b": stats(seen=alive(None, link=False))}
    choice = choose_standby(STATE, "redis-a", t, sync)
    assert choice.target is None
    assert choice.reason == (
        "redis-b's replication link was already down when redis-a last answered; promoting "
        "could lose acknowledged writes"
    )
    assert choice.override == 'drc failover order-state --force --reason "..."'
    assert choose_standby(STATE, "redis-a", t, sync, force=True).target == "redis-b"


def test_with_several_fit_standbys_the_most_advanced_is_chosen_and_said() -> None:
    three = service(
        {
            "name": "order-state",
            "redundancy": "active-standby",
            "primary": "redis-a",
            "replicas": [
                replica("redis-a", url="redis://127.0.0.1:7001"),
                replica("redis-b", url="redis://127.0.0.1:7002"),
                replica("redis-c", url="redis://127.0.0.1:7003"),
            ],
        }
    )
    t = tracks(redis_a=ReplicaState.FAILED, redis_b=HEALTHY, redis_c=HEALTHY)
    sync = {
        "redis-b": stats("redis-b", seen=alive(), reachable=False, offset=510),
        "redis-c": stats("redis-c", seen=alive(), reachable=False, offset=530),
    }
    choice = choose_standby(three, "redis-a", t, sync)
    assert choice.target == "redis-c"
    assert choice.reason.endswith(
        "the most advanced of 2 fit standbys (offset 530; redis-b at 510)"
    ), choice.reason


def test_a_primary_that_answers_heartbeats_but_not_lag_samples_is_dead() -> None:
    t = tracks(redis_a=HEALTHY, redis_b=HEALTHY)
    assert primary_alive("redis-a", t, {"redis-b": stats()})
    assert not primary_alive("redis-a", t, {"redis-b": stats(reachable=False)})


def test_an_operators_choice_is_checked() -> None:
    t = tracks(og_a=HEALTHY, og_b=ReplicaState.FAILED)
    assert choose_standby(GATEWAY, "og-a", t, {}, wanted="og-a").reason == (
        "og-a is already the primary"
    )
    refused = choose_standby(GATEWAY, "og-a", t, {}, wanted="og-b")
    assert refused.reason == "og-b is failed, not a healthy standby"
    assert refused.override == "drc restart order-gateway og-b"


# --- restart and freeze -----------------------------------------------------------------------


def test_a_failed_replica_is_restarted() -> None:
    verdict = restart_verdict(GATEWAY, "og-b", ReplicaRepair(), False, 100.0)
    assert (verdict.action, verdict.reason) == ("restart", "restarting og-b")


def test_a_flapping_replica_is_frozen_with_the_way_out() -> None:
    verdict = restart_verdict(GATEWAY, "og-b", ReplicaRepair(), True, 100.0)
    assert verdict.action == "freeze"
    assert verdict.reason == (
        "og-b is flapping: automatic restarts frozen for 300 s; an operator must look "
        "(drc resume order-gateway or drc restart order-gateway og-b lifts it)"
    )


def test_a_frozen_replica_stays_frozen_until_its_time() -> None:
    repair = ReplicaRepair(frozen_until=400.0)
    assert restart_verdict(GATEWAY, "og-b", repair, False, 100.0).action == "frozen"
    assert restart_verdict(GATEWAY, "og-b", repair, False, 400.0).action == "restart"


def test_restarts_within_the_window_end_in_a_crash_loop() -> None:
    repair = ReplicaRepair(restarts=[10.0, 20.0, 30.0])
    verdict = restart_verdict(GATEWAY, "og-b", repair, False, 100.0)
    assert verdict.action == "crash-looping" and repair.crash_looping
    assert verdict.reason == (
        "og-b failed again after 3 restarts within 300 s: crash-looping, not restarting again "
        "(drc restart order-gateway og-b clears it)"
    )
    old = ReplicaRepair(restarts=[10.0, 20.0, 30.0])
    assert restart_verdict(GATEWAY, "og-b", old, False, 400.0).action == "restart"


def test_a_replica_without_process_control_is_not_restarted() -> None:
    bare = service(
        {"name": "x", "replicas": [{"name": "x-a", "region": "ldn", "url": "http://h:1"}]}
    )
    verdict = restart_verdict(bare, "x-a", ReplicaRepair(), False, 1.0)
    assert verdict == verdict.__class__("no-action", "x-a has no process control: not restarting")


# --- drain ------------------------------------------------------------------------------------


def test_drain_takes_a_failed_replica_out_but_never_the_last_in_rotation() -> None:
    assert drain_verdict(QUOTES, "md-a", set()).action == "drain"
    assert drain_verdict(QUOTES, "md-b", {"md-a"}).action == "drain"
    last = drain_verdict(QUOTES, "md-c", {"md-a", "md-b"})
    assert last.action == "no-action" and last.reason.startswith(
        "not draining md-c: it is the last replica in rotation (drained: md-a, md-b)"
    )
    assert drain_verdict(GATEWAY, "og-a", set()).action == "no-action"


def test_between_equal_standbys_one_in_another_region_than_the_primarys_is_chosen() -> None:
    three = service(
        {
            "name": "quotes-gw",
            "redundancy": "active-standby",
            "primary": "q-a",
            "replicas": [replica("q-a", "ldn"), replica("q-b", "ldn"), replica("q-c", "nyc")],
        }
    )
    choice = choose_standby(
        three, "q-a", tracks(q_a=ReplicaState.FAILED, q_b=HEALTHY, q_c=HEALTHY), {}
    )
    assert choice.target == "q-c"
    assert choice.reason == (
        "q-c is the healthy standby; in nyc, preferred to q-b in ldn, the failed primary's region"
    )
    # Health comes first: a degraded standby elsewhere loses to a healthy one next door.
    degraded = tracks(q_a=ReplicaState.FAILED, q_b=HEALTHY, q_c=ReplicaState.DEGRADED)
    assert choose_standby(three, "q-a", degraded, {}).reason == "q-b is the healthy standby"

"""The pure detector: hysteresis, degradation, flapping, resumption, and the service's state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drc.catalog import Service
from drc.conditions import rank
from drc.detector import STABLE_STATES, Detector, Observation, is_suspect, service_state
from drc.model import ProbeResult, ReplicaState, ReplicaTrack, ServiceState, Transition

U, H, D, F = (
    ReplicaState.UNKNOWN,
    ReplicaState.HEALTHY,
    ReplicaState.DEGRADED,
    ReplicaState.FAILED,
)

# Every transition names its condition and severity (drc/conditions.py); recoveries name none.
DOWN: dict[str, Any] = {"condition": "down", "severity": "critical"}
SLOW: dict[str, Any] = {"condition": "latency_degradation", "severity": "medium"}
UNHEALTHY: dict[str, Any] = {"condition": "health_check_failing", "severity": "medium"}


def make_service(
    *,
    replicas: tuple[str, ...] = ("og-a",),
    redundancy: str = "single",
    primary: str | None = None,
    failure: int = 3,
    recovery: int = 2,
    latency_ms: float | None = None,
    flap_window_s: float = 300,
    flap_max: int = 6,
) -> Service:
    data: dict[str, Any] = {
        "name": "order-gateway",
        "redundancy": redundancy,
        "replicas": [
            {"name": name, "region": "ldn", "url": f"http://127.0.0.1:{i + 1}"}
            for i, name in enumerate(replicas)
        ],
        "probe": {"failure_threshold": failure, "recovery_threshold": recovery},
        "thresholds": {
            "latency_degraded_ms": latency_ms,
            "flap_window_s": flap_window_s,
            "flap_max_transitions": flap_max,
        },
    }
    if primary is not None:
        data["primary"] = primary
    return Service.model_validate(data)


def ok(latency_ms: float = 12.0, health: ProbeResult | None = None) -> Observation:
    return Observation(ProbeResult(True, latency_ms), health)


def miss(
    error: str | None = "connection refused", health: ProbeResult | None = None
) -> Observation:
    return Observation(ProbeResult(False, 200.0, error=error), health)


def healthy_check() -> ProbeResult:
    return ProbeResult(True, 5.0)


def failing_check(error: str | None = "redis: connection refused") -> ProbeResult:
    return ProbeResult(False, 5.0, error=error)


class Clock:
    """Feeds one replica of a detector, one second per observation unless told otherwise."""

    def __init__(self, detector: Detector, replica: str = "og-a", now: float = 0.0) -> None:
        self.detector = detector
        self.replica = replica
        self.now = now

    def feed(self, observations: Iterable[Observation], step: float = 1.0) -> list[Transition]:
        transitions = []
        for obs in observations:
            self.now += step
            t = self.detector.observe(self.replica, obs, self.now)
            if t is not None:
                transitions.append(t)
        return transitions

    def one(self, obs: Observation, step: float = 1.0) -> Transition | None:
        self.now += step
        return self.detector.observe(self.replica, obs, self.now)

    @property
    def track(self) -> ReplicaTrack:
        return self.detector.tracks[self.replica]


def healthy_clock(**service: Any) -> Clock:
    clock = Clock(Detector(make_service(**service)))
    clock.feed([ok()] * clock.detector.service.probe.recovery_threshold)
    assert clock.track.state is H
    return clock


def failed_clock(**service: Any) -> Clock:
    clock = healthy_clock(**service)
    clock.feed([miss()] * clock.detector.service.probe.failure_threshold)
    assert clock.track.state is F
    return clock


# --- starting out --------------------------------------------------------------------------------


def test_new_tracks_start_unknown_at_the_given_time() -> None:
    detector = Detector(make_service(replicas=("og-a", "og-b"), redundancy="active-active"), now=7)
    assert set(detector.tracks) == {"og-a", "og-b"}
    for track in detector.tracks.values():
        assert track == ReplicaTrack(state=U, since=7)


def test_unknown_stays_unknown_until_recovery_threshold_passes() -> None:
    clock = Clock(Detector(make_service(recovery=3)))
    assert clock.feed([ok(), ok()]) == []
    assert clock.track.state is U
    assert clock.track.consecutive_successes == 2


def test_unknown_becomes_healthy_after_recovery_threshold_passes() -> None:
    clock = Clock(Detector(make_service(recovery=3)))
    clock.feed([ok(), ok()])
    t = clock.one(ok(latency_ms=8.25))
    assert t == Transition("og-a", U, H, "og-a answered 3 heartbeats in a row (8.2 ms)", 3.0)
    assert clock.track.state is H
    assert clock.track.since == 3.0


def test_unknown_becomes_failed_after_failure_threshold_misses() -> None:
    clock = Clock(Detector(make_service(failure=3)))
    assert clock.feed([miss(), miss()]) == []
    assert clock.track.state is U
    assert is_suspect(clock.track)
    t = clock.one(miss())
    assert t == Transition(
        "og-a",
        U,
        F,
        "og-a missed 3 heartbeats in a row (last error: connection refused)",
        3.0,
        **DOWN,
    )
    assert not is_suspect(clock.track)


def test_unknown_replica_whose_first_passes_are_slow_comes_up_degraded() -> None:
    clock = Clock(Detector(make_service(recovery=2, latency_ms=100)))
    transitions = clock.feed([ok(250), ok(250)])
    assert transitions == [
        Transition(
            "og-a", U, D, "og-a is degraded: heartbeat latency 250.0 ms above 100 ms", 2.0, **SLOW
        )
    ]


# --- failing, with hysteresis --------------------------------------------------------------------


def test_healthy_replica_is_suspect_but_not_failed_through_threshold_minus_one_misses() -> None:
    clock = healthy_clock(failure=4)
    for misses in range(1, 4):
        assert clock.one(miss()) is None
        assert clock.track.state is H
        assert clock.track.consecutive_failures == misses
        assert is_suspect(clock.track)


def test_healthy_replica_fails_on_the_threshold_miss_naming_the_last_error() -> None:
    clock = healthy_clock(failure=3)
    clock.feed([miss("timeout"), miss("reset by peer")])
    t = clock.one(miss("connection refused"))
    assert t is not None
    assert (t.old, t.new) == (H, F)
    assert t.reason == "og-a missed 3 heartbeats in a row (last error: connection refused)"
    assert clock.track.last_error == "connection refused"


def test_miss_without_error_text_is_reported_as_heartbeat_failed() -> None:
    clock = healthy_clock(failure=1)
    t = clock.one(miss(error=None))
    assert t is not None
    assert t.reason == "og-a missed 1 heartbeats in a row (last error: heartbeat failed)"


def test_a_single_pass_resets_the_miss_count() -> None:
    clock = healthy_clock(failure=3)
    assert clock.feed([miss(), miss(), ok(), miss(), miss()]) == []
    assert clock.track.state is H
    assert clock.track.consecutive_failures == 2
    t = clock.one(miss())
    assert t is not None and (t.old, t.new) == (H, F)


def test_a_pass_clears_suspicion() -> None:
    clock = healthy_clock()
    clock.one(miss())
    assert is_suspect(clock.track)
    assert clock.one(ok()) is None
    assert not is_suspect(clock.track)
    assert clock.track.consecutive_failures == 0


def test_further_misses_of_a_failed_replica_are_not_transitions() -> None:
    clock = failed_clock(failure=2)
    assert clock.feed([miss()] * 5) == []
    assert clock.track.consecutive_failures == 7
    assert not is_suspect(clock.track)


def test_degraded_replica_fails_after_failure_threshold_misses() -> None:
    clock = healthy_clock(failure=2, latency_ms=100)
    clock.feed([ok(300), ok(300)])
    assert clock.track.state is D
    assert clock.one(miss()) is None
    t = clock.one(miss("timeout"))
    assert t == Transition(
        "og-a", D, F, "og-a missed 2 heartbeats in a row (last error: timeout)", clock.now, **DOWN
    )


# --- recovering ----------------------------------------------------------------------------------


def test_failed_replica_needs_recovery_threshold_passes_to_be_healthy() -> None:
    clock = failed_clock(recovery=3)
    assert clock.feed([ok(), ok()]) == []
    assert clock.track.state is F
    t = clock.one(ok(15))
    assert t == Transition("og-a", F, H, "og-a answered 3 heartbeats in a row (15.0 ms)", clock.now)


def test_an_interleaved_miss_restarts_the_recovery_count() -> None:
    clock = failed_clock(recovery=3)
    assert clock.feed([ok(), ok(), miss(), ok(), ok()]) == []
    assert clock.track.state is F
    assert clock.track.consecutive_successes == 2
    t = clock.one(ok())
    assert t is not None and (t.old, t.new) == (F, H)


def test_failed_replica_recovering_slowly_comes_back_degraded() -> None:
    clock = failed_clock(recovery=2, latency_ms=100)
    t = clock.feed([ok(400), ok(400)])
    assert [(x.old, x.new, x.reason) for x in t] == [
        (F, D, "og-a is degraded: heartbeat latency 400.0 ms above 100 ms")
    ]


# --- degradation ---------------------------------------------------------------------------------


def test_latency_above_limit_degrades_after_failure_threshold_slow_samples() -> None:
    clock = healthy_clock(failure=3, latency_ms=100)
    assert clock.feed([ok(150), ok(150)]) == []
    assert clock.track.state is H
    t = clock.one(ok(180.04))
    assert t == Transition(
        "og-a", H, D, "og-a is degraded: heartbeat latency 180.0 ms above 100 ms", clock.now, **SLOW
    )


def test_a_fast_sample_restarts_the_slow_count() -> None:
    clock = healthy_clock(failure=3, latency_ms=100)
    assert clock.feed([ok(150), ok(150), ok(50), ok(150), ok(150)]) == []
    assert clock.track.state is H


def test_latency_equal_to_the_limit_is_not_degraded() -> None:
    clock = healthy_clock(failure=1, latency_ms=100)
    assert clock.feed([ok(100)] * 5) == []
    assert clock.track.state is H


def test_without_a_latency_limit_slowness_never_degrades() -> None:
    clock = healthy_clock(failure=1)
    assert clock.feed([ok(10_000)] * 5) == []
    assert clock.track.state is H


def test_degraded_returns_to_healthy_after_recovery_threshold_clean_samples() -> None:
    clock = healthy_clock(failure=2, recovery=3, latency_ms=100)
    clock.feed([ok(150), ok(150)])
    assert clock.track.state is D
    assert clock.feed([ok(20), ok(20), ok(150), ok(20), ok(20)]) == []
    assert clock.track.state is D
    t = clock.one(ok(20))
    assert t == Transition(
        "og-a", D, H, "og-a recovered from degradation after 3 clean probes", clock.now
    )


def test_a_miss_restarts_the_clean_count_of_a_degraded_replica() -> None:
    clock = healthy_clock(failure=2, recovery=2, latency_ms=100)
    clock.feed([ok(150), ok(150)])
    assert clock.track.state is D
    assert clock.feed([ok(20), miss(), ok(20)]) == []
    assert clock.track.state is D
    t = clock.one(ok(20))
    assert t is not None
    assert t.reason == "og-a recovered from degradation after 2 clean probes"


def test_failing_health_degrades_with_the_health_error_in_the_reason() -> None:
    clock = healthy_clock(failure=2)
    assert clock.one(ok(health=failing_check())) is None
    t = clock.one(ok(health=failing_check()))
    assert t == Transition(
        "og-a",
        H,
        D,
        "og-a is degraded: health check failing: redis: connection refused",
        clock.now,
        **UNHEALTHY,
    )


def test_failing_health_without_error_text_reads_unhealthy() -> None:
    clock = healthy_clock(failure=1)
    t = clock.one(ok(health=failing_check(error=None)))
    assert t is not None
    assert t.reason == "og-a is degraded: health check failing: unhealthy"


def test_health_error_takes_precedence_over_latency_in_the_reason() -> None:
    clock = healthy_clock(failure=1, latency_ms=100)
    t = clock.one(ok(500, health=failing_check("db down")))
    assert t is not None
    assert t.reason == "og-a is degraded: health check failing: db down"


def test_a_tick_without_health_keeps_the_last_health_result() -> None:
    clock = healthy_clock(failure=3, recovery=2)
    clock.one(ok(health=failing_check()))
    assert clock.feed([ok(), ok()]) != []  # no /health on these ticks: still failing
    assert clock.track.state is D
    assert clock.track.health_error == "redis: connection refused"
    clock.one(ok(health=healthy_check()))
    assert clock.track.health_error is None
    t = clock.one(ok())  # no /health: still the passing result
    assert t is not None
    assert (t.old, t.new) == (D, H)


def test_a_missed_heartbeat_forgets_health_results_so_recovery_is_judged_fresh() -> None:
    clock = healthy_clock(failure=3)
    clock.one(Observation(ProbeResult(True, 1.0), failing_check("down")))
    assert clock.track.health_error == "down"
    clock.one(Observation(ProbeResult(False, 0.0, error="timeout"), failing_check("down")))
    assert clock.track.health_error is None
    assert clock.track.state is H


# --- flapping ------------------------------------------------------------------------------------


def flappy() -> Clock:
    """Four transitions at t = 1..4 with a window of 60 s and a limit of 4."""
    clock = Clock(Detector(make_service(failure=1, recovery=1, flap_window_s=60, flap_max=4)))
    return clock


def test_max_transitions_within_the_window_mark_the_replica_flapping() -> None:
    clock = flappy()
    transitions = clock.feed([ok(), miss(), ok(), miss()])
    assert [(t.old, t.new, t.flapping) for t in transitions] == [
        (U, H, False),
        (H, F, False),
        (F, H, False),
        (H, F, True),
    ]
    assert clock.track.flapping
    assert clock.track.transition_times == [1.0, 2.0, 3.0, 4.0]


def test_transitions_spread_wider_than_the_window_do_not_flap() -> None:
    clock = flappy()
    transitions = clock.feed([ok(), miss(), ok(), miss(), ok(), miss()], step=30)
    assert len(transitions) == 6
    assert not any(t.flapping for t in transitions)
    assert not clock.track.flapping


def test_flapping_replica_stays_flapping_while_the_window_holds_enough_transitions() -> None:
    clock = flappy()
    clock.feed([ok(), miss(), ok(), miss()])
    t = clock.one(ok())
    assert t is not None and t.flapping
    assert clock.one(ok(), step=55) is None  # t=60: transitions at 1..5 all within 60 s
    assert clock.track.flapping


def test_flapping_expires_once_the_window_passes_without_transitions() -> None:
    clock = flappy()
    clock.feed([ok(), miss(), ok(), miss()])
    assert clock.one(miss(), step=70) is None
    assert not clock.track.flapping
    assert clock.track.transition_times == []
    t = clock.one(ok())
    assert t is not None and not t.flapping


# --- resuming ------------------------------------------------------------------------------------


def test_tracks_passed_in_are_resumed_and_their_counters_continue() -> None:
    service = make_service(replicas=("og-a", "og-b"), redundancy="active-active", failure=3)
    track = ReplicaTrack(state=H, consecutive_failures=2, last_error="timeout", since=5.0)
    detector = Detector(service, {"og-a": track, "gone": ReplicaTrack()}, now=100)
    assert detector.tracks["og-a"] is track
    assert "gone" not in detector.tracks
    assert detector.tracks["og-b"] == ReplicaTrack(since=100)
    t = detector.observe("og-a", miss(), 101)
    assert t == Transition(
        "og-a",
        H,
        F,
        "og-a missed 3 heartbeats in a row (last error: connection refused)",
        101,
        **DOWN,
    )


def test_resumed_recovery_count_continues() -> None:
    track = ReplicaTrack(state=F, consecutive_successes=1, latency_ms=9.0)
    detector = Detector(make_service(recovery=2), {"og-a": track})
    t = detector.observe("og-a", ok(), 10)
    assert t is not None and (t.old, t.new) == (F, H)


def test_resumed_flap_history_counts_towards_flapping() -> None:
    track = ReplicaTrack(state=H, transition_times=[1.0, 2.0, 3.0])
    detector = Detector(make_service(failure=1, flap_window_s=60, flap_max=4), {"og-a": track})
    t = detector.observe("og-a", miss(), 4)
    assert t is not None and t.flapping


# --- the service's state -------------------------------------------------------------------------

SINGLE = make_service()
ACTIVE_ACTIVE = make_service(replicas=("md-a", "md-b"), redundancy="active-active")
ACTIVE_STANDBY = make_service(
    replicas=("og-a", "og-b"), redundancy="active-standby", primary="og-a"
)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (U, ServiceState.UNKNOWN),
        (H, ServiceState.HEALTHY),
        (D, ServiceState.DEGRADED),
        (F, ServiceState.DOWN),
    ],
)
def test_single_service_follows_its_replica(state: ReplicaState, expected: ServiceState) -> None:
    assert service_state(SINGLE, {"og-a": state}) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (U, U, ServiceState.UNKNOWN),
        (H, H, ServiceState.HEALTHY),
        (H, F, ServiceState.DEGRADED),
        (F, H, ServiceState.DEGRADED),
        (H, D, ServiceState.DEGRADED),
        (H, U, ServiceState.DEGRADED),
        (D, D, ServiceState.DEGRADED),
        (F, F, ServiceState.DOWN),
        (F, U, ServiceState.DOWN),
    ],
)
def test_active_active_service_is_up_while_any_replica_serves(
    a: ReplicaState, b: ReplicaState, expected: ServiceState
) -> None:
    assert service_state(ACTIVE_ACTIVE, {"md-a": a, "md-b": b}) is expected


@pytest.mark.parametrize(
    ("primary", "standby", "expected"),
    [
        (U, U, ServiceState.UNKNOWN),
        (H, H, ServiceState.HEALTHY),
        (H, F, ServiceState.DEGRADED),
        (H, U, ServiceState.DEGRADED),
        (D, H, ServiceState.DEGRADED),
        (F, H, ServiceState.DOWN),
        (U, H, ServiceState.DOWN),
        (F, F, ServiceState.DOWN),
    ],
)
def test_active_standby_service_is_down_when_its_primary_is(
    primary: ReplicaState, standby: ReplicaState, expected: ServiceState
) -> None:
    assert service_state(ACTIVE_STANDBY, {"og-a": primary, "og-b": standby}) is expected


# --- properties ----------------------------------------------------------------------------------

thresholds = st.integers(min_value=1, max_value=5)
beats = st.lists(st.booleans(), max_size=60)
samples = st.lists(
    st.tuples(
        st.booleans(),  # heartbeat ok
        st.sampled_from([10.0, 150.0]),  # latency: below or above the limit
        st.sampled_from([None, True, False]),  # no /health this tick, passing, failing
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(failure=thresholds, recovery=thresholds, beats=beats)
def test_failed_is_entered_only_right_after_exactly_failure_threshold_misses(
    failure: int, recovery: int, beats: list[bool]
) -> None:
    clock = Clock(Detector(make_service(failure=failure, recovery=recovery)))
    run = 0
    for beat in beats:
        run = 0 if beat else run + 1
        before = clock.track.state
        t = clock.one(ok() if beat else miss())
        if t is not None and t.new is F:
            assert run == failure
        # and the threshold miss fails the replica, whatever it was unless failed already
        if run == failure and before is not F:
            assert t is not None and t.new is F
        if run >= failure:
            assert clock.track.state is F


@settings(max_examples=200, deadline=None)
@given(failure=thresholds, recovery=thresholds, beats=beats)
def test_healthy_is_entered_only_after_recovery_threshold_passes(
    failure: int, recovery: int, beats: list[bool]
) -> None:
    clock = Clock(Detector(make_service(failure=failure, recovery=recovery)))
    run = 0
    for beat in beats:
        run = run + 1 if beat else 0
        before = clock.track.state
        t = clock.one(ok() if beat else miss())
        if t is not None and t.new is H:
            # From degraded too: misses that never reach the threshold raise the error rate.
            assert before in (U, F, D)
            assert run >= recovery


@settings(max_examples=200, deadline=None)
@given(failure=thresholds, recovery=thresholds, samples=samples)
def test_every_step_keeps_the_track_consistent(
    failure: int, recovery: int, samples: list[tuple[bool, float, bool | None]]
) -> None:
    service = make_service(failure=failure, recovery=recovery, latency_ms=100, flap_max=3)
    clock = Clock(Detector(service))
    health_failing = False
    clean_run = 0
    for beat_ok, latency, health_ok in samples:
        before, condition_before = clock.track.state, clock.track.condition
        health = None if health_ok is None else (healthy_check() if health_ok else failing_check())
        if not beat_ok:
            health_failing = False  # a miss forgets /health results (judged fresh on return)
        elif health_ok is not None:
            health_failing = not health_ok
        clean = beat_ok and latency <= 100 and not health_failing
        clean_run = clean_run + 1 if clean else 0
        obs = ok(latency, health) if beat_ok else miss(health=health)
        t = clock.one(obs)
        track = clock.track
        # hysteresis: back from degraded only after an unbroken run of clean probes
        if t is not None and (t.old, t.new) == (D, H):
            assert clean_run >= recovery
        # (b) a transition is returned iff the state changed, or a degraded replica shows a
        # more important condition than the one reported (degraded again); it says so faithfully
        if track.state is not before:
            assert t is not None and track.since == clock.now
        if t is not None and t.old is t.new:
            assert t.new is D and rank(t.condition) > rank(condition_before)
        if t is not None:
            assert (t.replica, t.old, t.new, t.at) == ("og-a", before, track.state, clock.now)
            assert t.reason.startswith("og-a ")
            assert t.flapping == track.flapping
        # (c) suspect, recovering and crash-looping are overlays, never the state itself
        assert track.state in STABLE_STATES
        # (d) a replica cannot be both on a run of misses and a run of passes
        assert not (track.consecutive_failures > 0 and track.consecutive_successes > 0)
        assert is_suspect(track) == (track.consecutive_failures > 0 and track.state is not F)


@settings(max_examples=100, deadline=None)
@given(beats=beats)
def test_state_never_takes_an_overlay_value_with_default_thresholds(beats: list[bool]) -> None:
    clock = Clock(Detector(make_service()))
    for beat in beats:
        clock.one(ok() if beat else miss())
        assert clock.track.state not in (
            ReplicaState.SUSPECT,
            ReplicaState.RECOVERING,
            ReplicaState.CRASH_LOOPING,
        )


def test_misses_while_process_control_says_starting_are_not_failures() -> None:
    detector = Detector(make_service(), now=0.0)
    for t in range(2):
        detector.observe("og-a", ok(), float(t))
    starting = Observation(
        ProbeResult(False, 1.0, "connection refused"), starting="og-a is STARTING"
    )
    assert [detector.observe("og-a", starting, 2.0 + t) for t in range(10)] == [None] * 10
    track = detector.tracks["og-a"]
    assert track.state is ReplicaState.HEALTHY and track.consecutive_failures == 0
    assert track.starting == "og-a is STARTING" and track.last_error == "connection refused"
    detector.observe("og-a", ok(), 12.0)
    assert track.starting is None


def test_the_last_answered_heartbeat_is_remembered() -> None:
    detector = Detector(make_service(), now=0.0)
    detector.observe("og-a", ok(), 5.0)
    detector.observe("og-a", miss(), 6.0)
    assert detector.tracks["og-a"].last_ok_at == 5.0


def test_a_miss_confirmed_dead_by_process_control_fails_at_once() -> None:
    detector = Detector(make_service(), now=0.0)
    for t in range(2):
        detector.observe("og-a", ok(), float(t))
    dead = Observation(
        ProbeResult(False, 0.1, "connection refused"),
        dead="process control reports it EXITED, exit status -9",
    )
    transition = detector.observe("og-a", dead, 2.0)
    assert transition is not None and transition.new is ReplicaState.FAILED
    assert transition.reason == (
        "og-a missed a heartbeat (last error: connection refused) and process control reports "
        "it EXITED, exit status -9: dead, not a blip"
    )
    detector.observe("og-a", ok(), 3.0)
    assert detector.tracks["og-a"].dead is None

"""Detection beyond up/down: the learned latency baseline, the error-rate window, conditions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from drc import baseline
from drc.catalog import Service, Thresholds
from drc.conditions import SEVERITY, Condition, failed_share, rank, record
from drc.detector import Detector, Observation
from drc.model import ProbeResult, ReplicaState, ReplicaTrack, Transition

U, H, D, F = (
    ReplicaState.UNKNOWN,
    ReplicaState.HEALTHY,
    ReplicaState.DEGRADED,
    ReplicaState.FAILED,
)
DOWN: dict[str, Any] = {"condition": "down", "severity": "critical"}
SLOW: dict[str, Any] = {"condition": "latency_degradation", "severity": "medium"}
ERRING: dict[str, Any] = {"condition": "error_rate_increase", "severity": "high"}
UNHEALTHY: dict[str, Any] = {"condition": "health_check_failing", "severity": "medium"}


def make_service(failure: int = 3, recovery: int = 2, **thresholds: Any) -> Service:
    return Service.model_validate(
        {
            "name": "order-gateway",
            "replicas": [{"name": "og-a", "region": "ldn", "url": "http://127.0.0.1:1"}],
            "probe": {"failure_threshold": failure, "recovery_threshold": recovery},
            "thresholds": thresholds,
        }
    )


def ok(latency_ms: float = 2.0, health: ProbeResult | None = None) -> Observation:
    return Observation(ProbeResult(True, latency_ms), health)


def miss(error: str = "HTTP 500: injected fault") -> Observation:
    return Observation(ProbeResult(False, 1.0, error=error))


def check(passed: bool) -> ProbeResult:
    return ProbeResult(passed, 3.0, None if passed else "/health: HTTP 500")


class Clock:
    """Feeds replica og-a of a detector, one second per observation."""

    def __init__(self, service: Service) -> None:
        self.detector = Detector(service)
        self.now = 0.0

    def one(self, obs: Observation, step: float = 1.0) -> Transition | None:
        self.now += step
        return self.detector.observe("og-a", obs, self.now)

    def feed(self, observations: Iterable[Observation], step: float = 1.0) -> list[Transition]:
        return [t for obs in observations if (t := self.one(obs, step)) is not None]

    @property
    def track(self) -> ReplicaTrack:
        return self.detector.tracks["og-a"]


def learned(samples: int = 20, latency_ms: float = 2.0, **service: Any) -> Clock:
    """A healthy replica whose baseline has learned ``samples`` heartbeats of ``latency_ms``."""
    clock = Clock(make_service(**service))
    clock.feed([ok(latency_ms)] * samples)
    assert clock.track.state is H and clock.track.latency_samples == samples
    return clock


# --- the latency baseline ------------------------------------------------------------------------


def test_the_baseline_is_tcps_estimator_started_at_the_first_sample() -> None:
    clock = Clock(make_service())
    clock.one(ok(4.0))
    assert (clock.track.latency_baseline_ms, clock.track.latency_deviation_ms) == (4.0, 2.0)
    clock.one(ok(12.0))
    # deviation: 2 + (|12 - 4| - 2) / 4 = 3.5; baseline: 4 + (12 - 4) / 8 = 5
    assert (clock.track.latency_baseline_ms, clock.track.latency_deviation_ms) == (5.0, 3.5)
    assert clock.track.latency_samples == 2


def test_the_limit_is_the_largest_of_deviation_ratio_and_floor() -> None:
    thresholds = Thresholds()
    track = ReplicaTrack(latency_baseline_ms=2.0, latency_deviation_ms=0.5, latency_samples=20)
    assert baseline.limit_ms(track, thresholds) == 50.0  # the floor
    track.latency_baseline_ms = 40.0
    assert baseline.limit_ms(track, thresholds) == 120.0  # 3 × baseline
    track.latency_deviation_ms = 30.0
    assert baseline.limit_ms(track, thresholds) == 160.0  # baseline + 4 × deviation
    track.latency_samples = 19
    assert baseline.limit_ms(track, thresholds) is None  # still learning


def test_a_2ms_service_at_200ms_degrades_after_failure_threshold_slow_heartbeats() -> None:
    clock = learned()
    assert clock.feed([ok(212.0), ok(212.0)]) == []
    t = clock.one(ok(212.0))
    assert t == Transition(
        "og-a",
        H,
        D,
        "og-a is degraded: heartbeat 212.0 ms, 3 slow in a row "
        "(baseline 2.0 ms ± 0.0 ms, limit 50.0 ms)",
        clock.now,
        **SLOW,
    )


def test_a_2ms_service_at_3ms_or_under_the_floor_is_not_slow() -> None:
    clock = learned()
    assert clock.feed([ok(3.0)] * 10 + [ok(49.0)] * 10) == []
    assert clock.track.consecutive_slow == 0


def test_slow_heartbeats_do_not_teach_the_baseline() -> None:
    clock = learned()
    before = (clock.track.latency_baseline_ms, clock.track.latency_deviation_ms, 20)
    clock.feed([ok(500.0)] * 50)
    track = clock.track
    assert (track.latency_baseline_ms, track.latency_deviation_ms, track.latency_samples) == before
    assert track.state is D and track.consecutive_slow == 50


def test_the_baseline_does_not_judge_before_min_samples() -> None:
    clock = learned(samples=5, latency_baseline_min_samples=10)
    assert clock.feed([ok(200.0)] * 3) == []
    assert clock.track.latency_samples == 8, "unjudged samples teach it"


def test_back_to_normal_latency_recovers_naming_the_baseline() -> None:
    clock = learned()
    clock.feed([ok(200.0)] * 3)
    assert clock.one(ok(2.0)) is None
    t = clock.one(ok(2.0))
    assert t is not None and (t.old, t.new, t.condition, t.severity) == (D, H, None, None)
    assert t.reason == (
        "og-a recovered from degradation after 2 clean probes: heartbeat 2.0 ms "
        "(baseline 2.0 ms ± 0.0 ms, limit 50.0 ms)"
    )


def test_a_fast_heartbeat_restarts_the_slow_count_and_a_miss_does_not() -> None:
    clock = learned()
    assert clock.feed([ok(200.0), ok(200.0), ok(2.0), ok(200.0), ok(200.0)]) == []
    assert clock.track.consecutive_slow == 2
    t = clock.feed([miss(), ok(200.0)])  # a miss says nothing of speed: the run goes on
    assert clock.track.consecutive_slow == 3
    assert [(x.new, x.reason.split(", ")[1]) for x in t] == [
        (D, "3 slow in a row (baseline 2.0 ms ± 0.0 ms")
    ]


def test_the_absolute_limit_still_judges_and_keeps_its_sentence() -> None:
    clock = learned(latency_degraded_ms=30)
    t = clock.feed([ok(40.0)] * 3)
    assert [x.reason for x in t] == ["og-a is degraded: heartbeat latency 40.0 ms above 30 ms"]


def test_without_the_baseline_nothing_is_learned_or_judged() -> None:
    clock = Clock(make_service(latency_baseline=False))
    assert clock.feed([ok(2.0)] * 2 + [ok(2.0)] * 30 + [ok(5000.0)] * 10) == [
        Transition("og-a", U, H, "og-a answered 2 heartbeats in a row (2.0 ms)", 2.0)
    ]
    assert clock.track.latency_baseline_ms is None and clock.track.latency_samples == 0


def test_a_sustained_shift_is_relearned_after_relearn_s_and_the_replica_recovers() -> None:
    clock = learned(latency_baseline_relearn_s=60)
    t = clock.feed([ok(200.0)] * 3)
    assert [x.new for x in t] == [D]
    assert clock.feed([ok(200.0)] * 55) == []  # slow since 21 s: not yet 60 s of it
    assert clock.track.latency_samples == 20
    t = clock.feed([ok(200.0)] * 5)
    assert [(x.old, x.new) for x in t] == [(D, H)]
    assert "recovered from degradation" in t[0].reason and "baseline" in t[0].reason
    assert clock.track.latency_baseline_ms is not None and clock.track.latency_baseline_ms > 50


def test_without_relearning_a_sustained_shift_stays_degraded() -> None:
    clock = learned(latency_baseline_relearn_s=None)
    clock.feed([ok(200.0)] * 10_000)
    assert clock.track.state is D and clock.track.latency_samples == 20


def test_a_failure_forgets_slowness_and_errors_but_not_the_baseline() -> None:
    clock = learned()
    clock.feed([ok(200.0), ok(200.0), miss(), miss(), miss()])
    track = clock.track
    assert track.state is F
    assert (track.consecutive_slow, track.slow_since, track.error_window) == (0, None, "")
    assert track.latency_baseline_ms == 2.0 and track.latency_samples == 20


# --- the error rate ------------------------------------------------------------------------------


def test_a_third_of_failed_probes_degrades_naming_the_share() -> None:
    clock = Clock(make_service())
    pattern = [ok(), ok(), miss()] * 7 + [ok(), ok()]
    transitions = clock.feed(pattern)
    assert [(t.old, t.new) for t in transitions] == [(U, H), (H, D)]
    assert transitions[1] == Transition(
        "og-a",
        H,
        D,
        "og-a is degraded: 6 of its last 20 probes failed (30 %, limit 20 %)",
        23.0,
        **ERRING,
    )
    assert clock.track.consecutive_failures == 0, "never three misses in a row: never failed"


def test_a_share_at_the_limit_or_under_it_is_clean() -> None:
    clock = Clock(make_service())
    assert [t.new for t in clock.feed(([ok()] * 4 + [miss()]) * 20)] == [H]  # exactly 20 %
    clock = Clock(make_service(error_rate_max=0.5))
    assert [t.new for t in clock.feed([ok(), miss()] * 30)] == []  # never 2 passes in a row


def test_the_share_is_judged_only_on_a_full_window() -> None:
    clock = Clock(make_service(recovery=1))
    assert [t.new for t in clock.feed([miss(), miss(), ok(), ok(), ok()])] == [H]
    assert failed_share(clock.track.error_window, 20) is None


def test_failed_health_checks_count_in_the_window() -> None:
    clock = Clock(make_service(failure=3, error_rate_window=4, error_rate_max=0.3))
    clock.feed([ok(), ok(health=check(True)), ok()])
    assert clock.track.error_window == "0000"
    clock.one(ok(health=check(False)))
    assert clock.track.error_window == "0001"  # the heartbeat passed, its /health failed


def test_a_health_check_that_keeps_failing_is_no_error_rate() -> None:
    # A dependency down: every /health fails, every heartbeat passes.
    clock = Clock(make_service())
    probes = [ok(health=check(False) if i % 4 == 0 else None) for i in range(200)]
    transitions = clock.feed(probes[:9])
    assert clock.track.error_window == "0100000000", "only its first failure counted"
    transitions += clock.feed(probes[9:])
    assert [(t.new, t.condition) for t in transitions] == [(D, "health_check_failing")]


def test_an_intermittent_health_check_counts_every_failure() -> None:
    clock = Clock(make_service(error_rate_window=6))
    clock.feed([ok(health=check(i % 2 == 0)) for i in range(4)])
    assert clock.track.error_window == "010001"  # (beat, /health) × 4: pass, fail, pass, fail


def test_misses_of_a_failed_or_starting_replica_do_not_count() -> None:
    clock = Clock(make_service())
    clock.feed([ok(), ok()] + [miss()] * 10)
    assert clock.track.state is F and clock.track.error_window == ""
    clock.feed([ok(), ok()])  # judged back while failed: not counted either
    assert clock.track.state is H and clock.track.error_window == ""
    starting = Observation(ProbeResult(False, 1.0, "refused"), starting="og-a is STARTING")
    clock.feed([ok(), starting, starting, ok()])
    assert clock.track.error_window == "00"


def test_a_replica_back_from_failure_is_not_degraded_by_its_outage() -> None:
    clock = Clock(make_service())
    clock.feed([ok()] * 20 + [miss()] * 3)
    t = clock.feed([ok()] * 25)
    assert [(x.old, x.new) for x in t] == [(F, H)]


def test_errors_falling_back_under_the_limit_recover_naming_the_share() -> None:
    clock = Clock(make_service(recovery=2))
    clock.feed([ok(), ok(), miss()] * 8)
    assert clock.track.state is D
    transitions = clock.feed([ok()] * 10)
    assert [(t.old, t.new) for t in transitions] == [(D, H)]
    assert transitions[0].reason == (
        "og-a recovered from degradation after 2 clean probes: "
        "4 of its last 20 probes failed (20 %, limit 20 %)"
    )


def test_an_error_rate_that_is_off_keeps_no_window() -> None:
    clock = Clock(make_service(error_rate_max=None))
    assert [t.new for t in clock.feed([ok(), miss()] * 30)] == []
    assert clock.track.error_window == ""


# --- conditions, severities, reporting a degraded replica again ----------------------------------


def test_failures_are_down_and_critical_recoveries_name_no_condition() -> None:
    clock = Clock(make_service())
    up, down = clock.feed([ok(), ok(), miss(), miss(), miss()])
    assert (up.condition, up.severity) == (None, None)
    assert {"condition": down.condition, "severity": down.severity} == DOWN


def test_the_most_important_condition_names_the_degradation() -> None:
    clock = learned(samples=20)
    t = clock.feed([ok(200.0, health=check(False))] * 3)
    assert [(x.condition, x.severity) for x in t] == [tuple(UNHEALTHY.values())]


def test_a_degraded_replica_that_starts_erring_is_reported_again() -> None:
    clock = learned()
    first = clock.feed([ok(200.0)] * 3)
    assert [x.condition for x in first] == ["latency_degradation"]
    since, times = clock.track.since, list(clock.track.transition_times)
    again = clock.feed([ok(200.0), ok(200.0), miss()] * 7)
    assert [(x.old, x.new, x.condition, x.severity) for x in again] == [(D, D, *ERRING.values())]
    assert again[0].reason.startswith("og-a is still degraded, now: 5 of its last 20 probes")
    assert clock.track.since == since and clock.track.transition_times == times
    assert clock.feed([ok(200.0, health=check(False))] * 5) == [], "a lesser one: not again"


def test_severity_of_every_condition() -> None:
    assert {c.value: s.value for c, s in SEVERITY.items()} == {
        "down": "critical",
        "error_rate_increase": "high",
        "health_check_failing": "medium",
        "latency_degradation": "medium",
    }
    assert rank(None) == 0 < rank("latency_degradation") < rank("health_check_failing")
    assert rank("health_check_failing") < rank("error_rate_increase") < rank(Condition.DOWN)


def test_payloads_recorded_before_these_fields_still_load() -> None:
    old_track = {"state": "degraded", "consecutive_failures": 0, "since": 3.0}
    track = TypeAdapter(ReplicaTrack).validate_python(old_track)
    assert (track.latency_baseline_ms, track.error_window, track.condition) == (None, "", None)
    old = {"replica": "og-a", "old": "healthy", "new": "failed", "reason": "r", "at": 1.0}
    transition = TypeAdapter(Transition).validate_python(old)
    assert (transition.condition, transition.severity) == (None, None)


def test_a_resumed_degraded_track_without_a_condition_is_named_once() -> None:
    track = ReplicaTrack(state=D, consecutive_successes=5, latency_ms=2.0)
    detector = Detector(make_service(), {"og-a": track})
    t = detector.observe("og-a", ok(health=check(False)), 1.0)
    assert t is not None and (t.old, t.new, t.condition) == (D, D, "health_check_failing")
    assert detector.observe("og-a", ok(health=check(False)), 2.0) is None


# --- properties ----------------------------------------------------------------------------------

latencies = st.floats(min_value=0.1, max_value=2000.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(samples=st.lists(st.one_of(st.none(), latencies), max_size=120))
def test_the_baseline_never_learns_from_a_slow_sample(samples: list[float | None]) -> None:
    clock = Clock(make_service(latency_baseline_min_samples=5, latency_baseline_relearn_s=None))
    for latency in samples:
        track = clock.track
        before = (track.latency_baseline_ms, track.latency_deviation_ms, track.latency_samples)
        slow = latency is not None and baseline.is_slow(latency, track, Thresholds())
        clock.one(miss() if latency is None else ok(latency))
        after = (track.latency_baseline_ms, track.latency_deviation_ms, track.latency_samples)
        if slow or latency is None:
            assert after == before
        if slow:
            assert track.consecutive_slow > 0


@settings(max_examples=200, deadline=None)
@given(latency=latencies, count=st.integers(min_value=1, max_value=300))
def test_a_constant_latency_never_degrades(latency: float, count: int) -> None:
    clock = Clock(make_service(failure=1, recovery=1))
    transitions = clock.feed([ok(latency)] * count)
    assert [(t.old, t.new) for t in transitions] == [(U, H)]
    assert clock.track.latency_baseline_ms == latency


@settings(max_examples=200, deadline=None)
@given(
    level=st.floats(min_value=1.0, max_value=100.0),
    jitter=st.lists(st.floats(min_value=0.9, max_value=1.1), min_size=60, max_size=60),
    min_samples=st.integers(min_value=1, max_value=40),
    extra=st.integers(min_value=0, max_value=20),
    failure=st.integers(min_value=1, max_value=5),
)
def test_a_step_to_100x_the_baseline_degrades_within_failure_threshold_samples(
    level: float, jitter: list[float], min_samples: int, extra: int, failure: int
) -> None:
    clock = Clock(make_service(failure=failure, latency_baseline_min_samples=min_samples))
    clock.feed([ok(level * j) for j in jitter[: max(min_samples + extra, 2)]])
    assert clock.track.state is H
    step = level * 100
    transitions = clock.feed([ok(step)] * failure)
    assert [(t.old, t.new, t.condition) for t in transitions] == [(H, D, "latency_degradation")]
    assert "baseline" in transitions[0].reason


runs = st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(failure=st.integers(min_value=2, max_value=5), runs=runs)
def test_slow_runs_shorter_than_the_threshold_never_degrade(failure: int, runs: list[int]) -> None:
    clock = learned(failure=failure)
    for run in runs:
        slow = min(run, failure - 1)
        assert clock.feed([ok(300.0)] * slow + [ok(2.0)] * run) == []
    assert clock.track.state is H


@settings(max_examples=200, deadline=None)
@given(recovery=st.integers(min_value=2, max_value=5), runs=runs)
def test_clean_runs_shorter_than_the_threshold_never_recover(
    recovery: int, runs: list[int]
) -> None:
    clock = learned(recovery=recovery)
    clock.feed([ok(300.0)] * 3)
    assert clock.track.state is D
    for run in runs:
        assert clock.feed([ok(2.0)] * min(run, recovery - 1) + [ok(300.0)] * run) == []
    assert clock.track.state is D


outcomes = st.lists(
    st.tuples(st.booleans(), st.sampled_from([None, True, False])), min_size=1, max_size=150
)


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(min_value=2, max_value=40),
    limit=st.floats(min_value=0.01, max_value=0.99),
    probes=outcomes,
)
def test_the_error_rate_equals_a_reference_count_over_a_random_sequence(
    window: int, limit: float, probes: list[tuple[bool, bool | None]]
) -> None:
    # A failure threshold out of reach: the replica is never failed, so every probe counts.
    service = make_service(failure=1000, error_rate_window=window, error_rate_max=limit)
    clock = Clock(service)
    reference: list[bool] = []  # every probe outcome counted so far: True = failed
    health_failing = False  # the last /health result remembered (a miss forgets it)
    for beat_ok, health_ok in probes:
        health = None if health_ok is None else check(health_ok)
        clock.one(ok(health=health) if beat_ok else miss())
        reference.append(not beat_ok)
        if not beat_ok:
            health_failing = False
        elif health_ok is not None:
            if health_ok or not health_failing:  # a /health failing again is not counted
                reference.append(not health_ok)
            health_failing = not health_ok
        last = reference[-window:]
        expected = (sum(last), window) if len(reference) >= window else None
        assert failed_share(clock.track.error_window, window) == expected
        assert len(clock.track.error_window) <= window
        erring = Condition.ERROR_RATE in clock.detector.conditions(clock.track)
        assert erring == (expected is not None and expected[0] / window > limit)


@settings(max_examples=200, deadline=None)
@given(
    window=st.text(alphabet="01", max_size=30),
    added=st.lists(st.booleans(), max_size=5),
    size=st.integers(min_value=2, max_value=30),
)
def test_recording_keeps_the_newest_outcomes_in_order(
    window: str, added: list[bool], size: int
) -> None:
    got = record(window, added, size)
    assert got == (window + "".join("1" if a else "0" for a in added))[-size:]


@settings(max_examples=200, deadline=None)
@given(
    probes=st.lists(
        st.tuples(
            st.booleans(), st.sampled_from([2.0, 300.0]), st.sampled_from([None, True, False])
        ),
        max_size=80,
    )
)
def test_every_transition_carries_the_severity_of_its_condition(
    probes: list[tuple[bool, float, bool | None]],
) -> None:
    clock = Clock(make_service(latency_baseline_min_samples=3))
    for beat_ok, latency, health_ok in probes:
        health = None if health_ok is None else check(health_ok)
        t = clock.one(ok(latency, health) if beat_ok else miss())
        if t is None:
            continue
        if t.new is F:
            assert (t.condition, t.severity) == ("down", "critical")
        elif t.new is D:
            assert t.condition is not None
            assert t.severity == SEVERITY[Condition(t.condition)].value
        else:
            assert (t.condition, t.severity) == (None, None)


@pytest.mark.parametrize("k", [2.0, 8.0])
def test_k_scales_the_deviation_term(k: float) -> None:
    track = ReplicaTrack(latency_baseline_ms=100.0, latency_deviation_ms=50.0, latency_samples=20)
    assert baseline.limit_ms(track, Thresholds(latency_baseline_k=k)) == max(100 + k * 50, 300)

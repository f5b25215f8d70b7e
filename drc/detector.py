"""The pure detector: probe results in, replica state transitions out (design notes §3).

No I/O and no clock of its own: the caller passes ``now``. A replica fails only after
``failure_threshold`` consecutive missed heartbeats and recovers only after
``recovery_threshold`` consecutive good ones (hysteresis). Between the first miss and the
threshold a replica is *suspect*: visible in its counters, but not a transition, so a blip
costs no workflow history.

A replica that answers is *degraded* after ``failure_threshold`` answered samples in a row with
a condition (drc/conditions.py) and healthy again after ``recovery_threshold`` clean ones: slow
heartbeats (above ``latency_degraded_ms`` or the learned baseline, drc/baseline.py), a failing
/health, or too many failed probes in the error-rate window. Every transition names its
condition and severity. A degraded replica that shows a more important condition than the one
reported is reported again (degraded → degraded): ranks only rise within one episode, so that
happens at most twice per episode, and it does not count towards flapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from drc import baseline
from drc.catalog import Redundancy, Service, Thresholds
from drc.conditions import Condition, failed_share, rank, record, severity
from drc.model import ProbeResult, ReplicaState, ReplicaTrack, ServiceState, Transition
from drc.reasons import transition_reason

STABLE_STATES = frozenset(
    {ReplicaState.UNKNOWN, ReplicaState.HEALTHY, ReplicaState.DEGRADED, ReplicaState.FAILED}
)


@dataclass(frozen=True)
class Observation:
    """One tick's probes of one replica; ``health`` is None on ticks that skip /health.

    ``starting`` says why a missed heartbeat is forgiven: process control reports the replica
    still starting (a Redis loading its data is not dead). Such a miss is not a failure.
    """

    heartbeat: ProbeResult
    health: ProbeResult | None = None
    starting: str | None = None
    dead: str | None = None
    """Set on a miss when process control confirms the process is gone (EXITED, FATAL): two
    independent sources agree, so the replica fails at once instead of after the threshold."""


class Detector:
    """Turns observations of a service's replicas into transitions; holds only ``tracks``."""

    def __init__(
        self, service: Service, tracks: dict[str, ReplicaTrack] | None = None, now: float = 0.0
    ) -> None:
        self.service = service
        known = tracks or {}
        self.tracks = {
            r.name: known.get(r.name) or ReplicaTrack(since=now) for r in service.replicas
        }

    @property
    def thresholds(self) -> Thresholds:
        """The service's degradation thresholds."""
        return self.service.thresholds

    def observe(self, replica: str, obs: Observation, now: float) -> Transition | None:
        """Record one observation; return the transition it causes, if any."""
        track = self.tracks[replica]
        self._record_outcomes(track, obs)  # first: it needs the /health result before this one
        _count(track, obs, now)
        if obs.heartbeat.ok:
            self._judge(track, obs.heartbeat.latency_ms, now)
        else:
            # A miss is not a clean probe: recovery from degradation needs an unbroken run.
            track.consecutive_clean = 0
        new = self._target_state(track)
        if new is not track.state or (obs.heartbeat.ok and self._worse_condition(track)):
            return self._transition(replica, track, new, now)
        self._expire_flapping(track, now)
        return None

    def conditions(self, track: ReplicaTrack) -> list[Condition]:
        """What is wrong with the replica as of its latest answered sample, most important first."""
        found = []
        if self._error_rate_high(track):
            found.append(Condition.ERROR_RATE)
        if track.health_error is not None:
            found.append(Condition.HEALTH)
        if track.consecutive_slow > 0:
            found.append(Condition.LATENCY)
        return found

    def is_degraded_sample(self, track: ReplicaTrack) -> bool:
        """Whether the latest sample of ``track`` counts against it as degraded."""
        return bool(self.conditions(track))

    def _record_outcomes(self, track: ReplicaTrack, obs: Observation) -> None:
        """Add this tick's heartbeat (and /health) outcomes to the error-rate window.

        Not while the replica is failed (a dead replica's misses would make it "erring" the
        moment it is back) nor for misses forgiven because it is starting. A /health that
        keeps failing is one condition (health_check_failing), not a stream of errors: only a
        failure after a pass counts, or a dependency that is down would read as an error rate.
        """
        beat = obs.heartbeat
        if self.thresholds.error_rate_max is None or track.state is ReplicaState.FAILED:
            return
        if not beat.ok and obs.starting is not None:
            return
        outcomes = [not beat.ok]
        health = obs.health
        if beat.ok and health is not None and (health.ok or track.health_error is None):
            outcomes.append(not health.ok)
        track.error_window = record(track.error_window, outcomes, self.thresholds.error_rate_window)

    def _judge(self, track: ReplicaTrack, latency_ms: float, now: float) -> None:
        """Judge an answered sample: slow or not, degraded or clean; let a clean one teach."""
        if baseline.is_slow(latency_ms, track, self.thresholds):
            track.consecutive_slow += 1
            track.slow_since = now if track.slow_since is None else track.slow_since
        else:
            track.consecutive_slow, track.slow_since = 0, None
        found = self.conditions(track)
        teaches = not found or (found == [Condition.LATENCY] and self._relearning(track, now))
        if teaches and self.thresholds.latency_baseline:
            baseline.learn(track, latency_ms)
        if found:
            track.consecutive_degraded += 1
            track.consecutive_clean = 0
        else:
            track.consecutive_clean += 1
            track.consecutive_degraded = 0

    def _relearning(self, track: ReplicaTrack, now: float) -> bool:
        """Slow for ``latency_baseline_relearn_s`` without a break: the shift is the new normal."""
        after = self.thresholds.latency_baseline_relearn_s
        return (
            after is not None and track.slow_since is not None and now - track.slow_since >= after
        )

    def _error_rate_high(self, track: ReplicaTrack) -> bool:
        limit = self.thresholds.error_rate_max
        share = failed_share(track.error_window, self.thresholds.error_rate_window)
        return limit is not None and share is not None and share[0] / share[1] > limit

    def _worse_condition(self, track: ReplicaTrack) -> bool:
        """A degraded replica now shows a more important condition than the one reported."""
        if track.state is not ReplicaState.DEGRADED:
            return False
        found = self.conditions(track)
        return bool(found) and rank(found[0]) > rank(track.condition)

    def _target_state(self, track: ReplicaTrack) -> ReplicaState:
        probe = self.service.probe
        if track.consecutive_failures >= probe.failure_threshold:
            return ReplicaState.FAILED
        if track.consecutive_failures > 0 and track.dead is not None:
            return ReplicaState.FAILED
        if track.consecutive_failures > 0:
            return track.state  # suspect: not yet a transition
        if track.state in (ReplicaState.FAILED, ReplicaState.UNKNOWN):
            if track.consecutive_successes < probe.recovery_threshold:
                return track.state
            return ReplicaState.DEGRADED if track.consecutive_degraded > 0 else ReplicaState.HEALTHY
        if (
            track.state is ReplicaState.HEALTHY
            and track.consecutive_degraded >= probe.failure_threshold
        ):
            return ReplicaState.DEGRADED
        if (
            track.state is ReplicaState.DEGRADED
            and track.consecutive_clean >= probe.recovery_threshold
        ):
            return ReplicaState.HEALTHY
        return track.state

    def _transition(
        self, replica: str, track: ReplicaTrack, new: ReplicaState, now: float
    ) -> Transition:
        condition = self._condition_of(track, new)
        if new is not track.state:  # a degraded replica reported again is no change of state
            window = self.thresholds.flap_window_s
            track.transition_times = [t for t in track.transition_times if now - t < window]
            track.transition_times.append(now)
            track.flapping = len(track.transition_times) >= self.thresholds.flap_max_transitions
            track.since = now
        reason = transition_reason(replica, track, new, condition, self.thresholds)
        old, track.state = track.state, new
        named = condition.value if condition is not None else None  # plain str on the wire
        track.condition = named if new is ReplicaState.DEGRADED else None
        if new is ReplicaState.FAILED:
            _forget_answers(track)
        return Transition(replica, old, new, reason, now, track.flapping, named, severity(named))

    def _condition_of(self, track: ReplicaTrack, new: ReplicaState) -> Condition | None:
        if new is ReplicaState.FAILED:
            return Condition.DOWN
        if new is ReplicaState.DEGRADED:
            return next(iter(self.conditions(track)), None)
        return None

    def _expire_flapping(self, track: ReplicaTrack, now: float) -> None:
        if (
            track.flapping
            and now - track.transition_times[0] >= self.service.thresholds.flap_window_s
        ):
            window = self.service.thresholds.flap_window_s
            track.transition_times = [t for t in track.transition_times if now - t < window]
            track.flapping = (
                len(track.transition_times) >= self.service.thresholds.flap_max_transitions
            )


def _count(track: ReplicaTrack, obs: Observation, now: float) -> None:
    beat = obs.heartbeat
    if not beat.ok and obs.starting is not None:
        track.starting, track.last_error = obs.starting, beat.error or "heartbeat failed"
        track.consecutive_successes = 0
        return
    track.starting = None
    if not beat.ok:
        track.dead = obs.dead
        if track.consecutive_failures == 0:
            track.failing_since = now  # the first failed probe: where an incident's impact starts
        track.consecutive_failures += 1
        track.consecutive_successes = 0
        track.last_error = beat.error or "heartbeat failed"
        # A /health result from while the replica was not answering says nothing about the
        # replica that comes back: forget it, so a recovery is judged on fresh checks.
        track.health_error = None
        return
    if obs.health is not None:
        track.health_error = None if obs.health.ok else (obs.health.error or "unhealthy")
    track.consecutive_failures, track.dead, track.failing_since = 0, None, None
    track.consecutive_successes += 1
    track.latency_ms = beat.latency_ms
    track.last_ok_at = now


def _forget_answers(track: ReplicaTrack) -> None:
    """A failed replica starts over when back: its old errors and slowness say nothing of it."""
    track.error_window, track.consecutive_slow, track.slow_since = "", 0, None


def is_suspect(track: ReplicaTrack) -> bool:
    """A replica that missed heartbeats but not yet enough to be failed."""
    return track.consecutive_failures > 0 and track.state is not ReplicaState.FAILED


def service_state(service: Service, states: dict[str, ReplicaState]) -> ServiceState:
    """Derive the service's state from its replicas' states and its redundancy mode."""
    up = {ReplicaState.HEALTHY, ReplicaState.DEGRADED}
    serving = [name for name, state in states.items() if state in up]
    if all(s is ReplicaState.UNKNOWN for s in states.values()):
        return ServiceState.UNKNOWN
    if not serving:
        return ServiceState.DOWN
    if service.redundancy is Redundancy.ACTIVE_STANDBY and service.primary not in serving:
        return ServiceState.DOWN
    if len(serving) == len(states) and all(states[n] is ReplicaState.HEALTHY for n in serving):
        return ServiceState.HEALTHY
    return ServiceState.DEGRADED

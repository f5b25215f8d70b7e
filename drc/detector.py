"""The pure detector: probe results in, replica state transitions out (design notes §3).

No I/O and no clock of its own: the caller passes ``now``. A replica fails only after
``failure_threshold`` consecutive missed heartbeats and recovers only after
``recovery_threshold`` consecutive good ones (hysteresis); degradation (slow heartbeat or a
failing /health) needs the same run lengths. Between the first miss and the threshold a replica is
*suspect*: visible in its counters, but not a transition, so a blip costs no workflow history.
"""

from __future__ import annotations

from dataclasses import dataclass

from drc.catalog import Redundancy, Service
from drc.model import ProbeResult, ReplicaState, ReplicaTrack, ServiceState, Transition

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

    def observe(self, replica: str, obs: Observation, now: float) -> Transition | None:
        """Record one observation; return the transition it causes, if any."""
        track = self.tracks[replica]
        _count(track, obs, now)
        if obs.heartbeat.ok:
            if self.is_degraded_sample(track):
                track.consecutive_degraded += 1
                track.consecutive_clean = 0
            else:
                track.consecutive_clean += 1
                track.consecutive_degraded = 0
        else:
            # A miss is not a clean probe: recovery from degradation needs an unbroken run.
            track.consecutive_clean = 0
        new = self._target_state(track)
        if new is track.state:
            self._expire_flapping(track, now)
            return None
        return self._transition(replica, track, new, now)

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
            return ReplicaState.DEGRADED if self._degraded_now(track) else ReplicaState.HEALTHY
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

    def _degraded_now(self, track: ReplicaTrack) -> bool:
        return track.consecutive_degraded > 0

    def _transition(
        self, replica: str, track: ReplicaTrack, new: ReplicaState, now: float
    ) -> Transition:
        window = self.service.thresholds.flap_window_s
        track.transition_times = [t for t in track.transition_times if now - t < window] + [now]
        track.flapping = len(track.transition_times) >= self.service.thresholds.flap_max_transitions
        reason = self._reason(replica, track, new)
        old, track.state, track.since = track.state, new, now
        return Transition(replica, old, new, reason, now, flapping=track.flapping)

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

    def _reason(self, replica: str, track: ReplicaTrack, new: ReplicaState) -> str:
        if new is ReplicaState.FAILED and track.dead is not None:
            return (
                f"{replica} missed {_heartbeats(track.consecutive_failures)} "
                f"(last error: {track.last_error}) and {track.dead}: dead, not a blip"
            )
        if new is ReplicaState.FAILED:
            return (
                f"{replica} missed {track.consecutive_failures} heartbeats in a row "
                f"(last error: {track.last_error})"
            )
        if new is ReplicaState.DEGRADED:
            return f"{replica} is degraded: {self._degradation(track)}"
        if track.state is ReplicaState.DEGRADED:
            return (
                f"{replica} recovered from degradation after {track.consecutive_clean} clean probes"
            )
        return (
            f"{replica} answered {track.consecutive_successes} heartbeats in a row "
            f"({_ms(track.latency_ms)})"
        )

    def _degradation(self, track: ReplicaTrack) -> str:
        if track.health_error:
            return f"health check failing: {track.health_error}"
        limit = self.service.thresholds.latency_degraded_ms
        return f"heartbeat latency {_ms(track.latency_ms)} above {limit:g} ms"

    def is_degraded_sample(self, track: ReplicaTrack) -> bool:
        """Whether the latest sample of ``track`` counts against it as degraded."""
        limit = self.service.thresholds.latency_degraded_ms
        slow = limit is not None and track.latency_ms is not None and track.latency_ms > limit
        return slow or track.health_error is not None


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


def _heartbeats(count: int) -> str:
    return "a heartbeat" if count == 1 else f"{count} heartbeats in a row"


def _ms(value: float | None) -> str:
    return "no latency yet" if value is None else f"{value:.1f} ms"


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

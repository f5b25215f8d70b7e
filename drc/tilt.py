"""TILT: drc distrusts its own eyes when its watch runs late or its clock jumps (pure).

After Redis Sentinel's TILT mode: when the event loop stalls (a tick comes far later than due)
or the wall clock jumps against the monotonic one, probe results straddle a gap drc did not
see, and missed heartbeats may be its own. While tilted, a watch feeds nothing to the detector
(no transition, so no repair), and it says so; it trusts itself again after a quiet period.
"""

from __future__ import annotations

from dataclasses import dataclass

LATE_FACTOR = 2.0
"""A tick later than this many intervals (and at least ``LATE_MIN_S``) is a stall."""
LATE_MIN_S = 1.0
JUMP_S = 1.0
"""A wall-clock step this far from the monotonic clock's is a jump."""
QUIET_INTERVALS = 10
QUIET_MIN_S = 5.0


@dataclass(frozen=True)
class Clocks:
    """One reading of both clocks."""

    wall: float
    mono: float


def tilt_reason(
    before: Clocks | None, now: Clocks, lateness_s: float, interval_s: float
) -> str | None:
    """Why the watch must not trust this tick, or None.

    ``lateness_s`` is how late the tick came against its schedule; ``before`` the last tick's
    clocks (None on the first).
    """
    late_limit = max(LATE_FACTOR * interval_s, LATE_MIN_S)
    if lateness_s > late_limit:
        return (
            f"the watch ran {lateness_s:.2f} s late (limit {late_limit:.2f} s): the worker "
            "stalled, its missed heartbeats may be its own"
        )
    if before is not None:
        drift = (now.wall - before.wall) - (now.mono - before.mono)
        if abs(drift) > JUMP_S:
            return (
                f"the wall clock jumped {drift:+.2f} s against the monotonic clock: times "
                "around it cannot be trusted"
            )
    return None


def quiet_period_s(interval_s: float) -> float:
    """How long a tilted watch acts on nothing after the last sign of trouble."""
    return max(QUIET_INTERVALS * interval_s, QUIET_MIN_S)

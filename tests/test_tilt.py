"""TILT: a stalled watch or a jumping clock makes drc distrust itself (pure rules)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drc.tilt import Clocks, quiet_period_s, tilt_reason


def test_a_stall_of_more_than_two_intervals_and_a_second_tilts() -> None:
    assert tilt_reason(None, Clocks(0, 0), 0.9, 0.25) is None
    reason = tilt_reason(None, Clocks(0, 0), 1.2, 0.25)
    assert reason is not None and reason.startswith("the watch ran 1.20 s late (limit 1.00 s)")
    assert tilt_reason(None, Clocks(0, 0), 5.0, 3.0) is None  # 2 intervals of 3 s is 6 s


def test_a_wall_clock_jump_tilts_either_way() -> None:
    before = Clocks(1000.0, 50.0)
    forward = tilt_reason(before, Clocks(1005.0, 50.25), 0.0, 0.25)
    backward = tilt_reason(before, Clocks(998.0, 50.25), 0.0, 0.25)
    assert forward is not None and "jumped +4.75 s" in forward
    assert backward is not None and "jumped -2.25 s" in backward


def test_the_quiet_period_is_ten_intervals_and_at_least_five_seconds() -> None:
    assert quiet_period_s(0.25) == 5.0 and quiet_period_s(1.0) == 10.0


@given(
    step=st.floats(min_value=0, max_value=100),
    lateness=st.floats(min_value=0, max_value=0.5),
    interval=st.floats(min_value=0.1, max_value=5),
)
def test_clocks_that_agree_and_ticks_on_time_never_tilt(
    step: float, lateness: float, interval: float
) -> None:
    before = Clocks(1_800_000_000.0, 10.0)
    now = Clocks(before.wall + step, before.mono + step)
    assert tilt_reason(before, now, lateness, interval) is None

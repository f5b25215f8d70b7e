"""The quorum rule of vantage points (drc/vantage.py), pure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drc.vantage import VantageVote, quorum

POINTS = ["ldn", "nyc", "fra"]


def test_down_from_a_majority_is_objectively_down() -> None:
    votes = [
        VantageVote("ldn", True, ""),
        VantageVote("nyc", True, ""),
        VantageVote("fra", False, ""),
    ]
    verdict = quorum("og-a", POINTS, votes)
    assert verdict.down
    assert verdict.reason == (
        "og-a is down from 2 of 3 vantage points (quorum 2): down from ldn, nyc; up from fra"
    )


def test_down_from_one_is_a_partition_and_silence_is_no_vote() -> None:
    verdict = quorum("og-a", POINTS, [VantageVote("ldn", True, ""), VantageVote("nyc", False, "")])
    assert not verdict.down
    assert verdict.reason.startswith(
        "og-a is partitioned, not down: down from ldn; up from nyc; no answer from fra "
        "(quorum 2 of 3)"
    )


def test_two_vantage_points_need_both() -> None:
    assert not quorum("r", ["ldn", "nyc"], [VantageVote("ldn", True, "")]).down
    both = [VantageVote("ldn", True, ""), VantageVote("nyc", True, "")]
    assert quorum("r", ["ldn", "nyc"], both).down


@given(st.lists(st.booleans(), min_size=1, max_size=7), st.data())
def test_objectively_down_exactly_when_a_strict_majority_votes_down(
    downs: list[bool], data: st.DataObject
) -> None:
    points = [f"v{i}" for i in range(len(downs))]
    answered = data.draw(st.lists(st.booleans(), min_size=len(downs), max_size=len(downs)))
    votes = [VantageVote(p, d, "") for p, d, a in zip(points, downs, answered, strict=True) if a]
    down_votes = sum(1 for v in votes if v.down)
    assert quorum("r", points, votes).down == (down_votes * 2 > len(points))

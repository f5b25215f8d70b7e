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


def test_a_silent_own_region_counts_down_when_every_answer_is_down() -> None:
    # ldn's probe workers went with ldn; nyc sees og-a (in ldn) down: objectively down.
    verdict = quorum("og-a", ["ldn", "nyc"], [VantageVote("nyc", True, "")], region="ldn")
    assert verdict.down
    assert verdict.reason == (
        "og-a is down from every vantage point that answers and its own region's (ldn) is "
        "silent, its probe workers gone with the region: counted down, 2 of 2 (quorum 2): "
        "down from nyc; up from none; no answer from ldn"
    )


def test_a_silent_own_region_is_no_vote_when_someone_sees_the_replica_up() -> None:
    votes = [VantageVote("nyc", True, ""), VantageVote("fra", False, "")]
    assert not quorum("og-a", POINTS, votes, region="ldn").down


def test_another_regions_silence_is_still_no_vote() -> None:
    # og-b lives in nyc; ldn's silence says nothing about nyc.
    assert not quorum("og-b", ["ldn", "nyc"], [VantageVote("nyc", True, "")], region="nyc").down


@given(st.lists(st.booleans(), min_size=1, max_size=7), st.data())
def test_the_own_regions_silence_is_one_down_vote_only_when_no_one_sees_it_up(
    downs: list[bool], data: st.DataObject
) -> None:
    points = [f"v{i}" for i in range(len(downs))]
    answered = data.draw(st.lists(st.booleans(), min_size=len(downs), max_size=len(downs)))
    region = data.draw(st.sampled_from(points))
    votes = [VantageVote(p, d, "") for p, d, a in zip(points, downs, answered, strict=True) if a]
    down_votes = sum(1 for v in votes if v.down)
    up_votes = len(votes) - down_votes
    silent_own = region not in {v.vantage for v in votes}
    counted = down_votes + (1 if silent_own and up_votes == 0 and down_votes > 0 else 0)
    assert quorum("r", points, votes, region).down == (counted * 2 > len(points))

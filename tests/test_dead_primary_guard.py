"""The judgement of a standby whose primary no longer answers (pure: no servers)."""

from __future__ import annotations

import pytest

from activities.state import (
    LINK_DOWN_SLACK_S,
    NEVER_UP,
    Endpoint,
    LastSeen,
    ReplicationInfo,
    judge_standby,
)

NOW = 1_800_000_000.0
REPLID = "a" * 40


def standby(
    offset: int = 1000,
    down: float | None = 0.0,
    replid: str = REPLID,
    role: str = "slave",
) -> ReplicationInfo:
    return ReplicationInfo(
        role="master" if role == "master" else "slave",
        offset=offset,
        link_up=None if role == "master" else down is None,
        connected_replicas=0,
        primary=None if role == "master" else Endpoint("127.0.0.1", 7001),
        min_replicas_to_write=0,
        replication_id=replid,
        link_down_since_s=None if role == "master" else down,
    )


def seen(ago: float = 0.5, offset: int = 1000, replid: str = REPLID) -> LastSeen:
    return LastSeen(at=NOW - ago, offset=offset, replid=replid)


def judge(info: ReplicationInfo, evidence: LastSeen) -> tuple[bool, str]:
    verdict = judge_standby("redis-a", "redis-b", info, evidence, NOW)
    return verdict.ok, verdict.reason


def test_a_link_that_broke_when_the_primary_died_with_every_byte_is_accepted() -> None:
    ok, why = judge(standby(offset=123456, down=1), seen(ago=0.4, offset=123400))
    assert ok
    assert why.startswith("redis-a does not answer; redis-b's link went down 1 s ago")
    assert "after redis-a was last seen at 07:59:59.600 UTC (0.4 s ago)" in why
    assert why.endswith(f"offset 123456 ≥ 123400 last seen on redis-a in replication id {REPLID}")


@pytest.mark.parametrize(
    ("down", "ago", "ok"),
    [
        (0, 0.0, True),
        (2, 0.6, True),  # within the slack: Redis's whole seconds read high
        (2, 0.4, False),
        (5, 4.0, True),  # the monitor saw it a while ago; the link broke after that
        (10, 3.0, False),
    ],
)
def test_the_link_must_have_broken_after_the_primary_was_last_seen(
    down: float, ago: float, ok: bool
) -> None:
    assert (down <= ago + LINK_DOWN_SLACK_S) == ok  # the table follows the documented slack
    got, why = judge(standby(down=down), seen(ago=ago))
    assert got == ok, why
    if not ok:
        assert why.startswith(f"redis-b's link to redis-a has been down {down:g} s, longer than")
        assert "stopped replicating before redis-a died" in why and "(offset 1000)" in why


def test_a_link_never_up_since_the_standby_started_is_refused() -> None:
    ok, why = judge(standby(down=NEVER_UP), seen())
    assert not ok
    assert why.startswith("redis-b's link to redis-a has been down since redis-b started")


def test_an_offset_below_the_last_one_seen_is_refused() -> None:
    ok, why = judge(standby(offset=900, down=0), seen(offset=1000))
    assert not ok
    assert why == (
        "redis-b holds offset 900, below the 1000 last seen on redis-a: 100 bytes redis-a had "
        "are missing"
    )


def test_offsets_in_another_replication_id_are_not_compared() -> None:
    ok, why = judge(standby(offset=5000, down=0, replid="b" * 40), seen(offset=1000))
    assert not ok
    assert why.startswith(f"redis-b's offset 5000 counts in replication id {'b' * 40}, not")
    assert why.endswith("at offset 1000: the two cannot be compared")


@pytest.mark.parametrize("evidence", [LastSeen(), LastSeen(at=0, offset=1000, replid=REPLID)])
def test_without_evidence_a_dead_primarys_standby_cannot_be_judged(evidence: LastSeen) -> None:
    ok, why = judge(standby(down=0), evidence)
    assert not ok
    assert why == (
        "redis-a does not answer and was never seen answering (no primary_last_seen): redis-b "
        "(offset 1000, link down for 0 s) cannot be judged (--force overrides)"
    )


@pytest.mark.parametrize("evidence", [LastSeen(), seen(offset=10**9)])
def test_a_standby_that_already_reports_itself_primary_is_accepted(evidence: LastSeen) -> None:
    ok, why = judge(standby(role="master", offset=4242), evidence)
    assert ok
    assert why == (
        "redis-a does not answer; redis-b already reports itself primary (offset 4242), as a "
        "half-finished earlier failover leaves it: nothing to catch up"
    )


def test_unknown_offset_and_replid_are_said_not_assumed() -> None:
    ok, why = judge(standby(offset=7, down=0), LastSeen(at=NOW - 1))
    assert ok and why.endswith("offset 7 not compared (no offset was seen on redis-a)")
    ok, why = judge(standby(offset=7, down=0, replid="x"), LastSeen(at=NOW - 1, offset=7))
    assert ok and why.endswith("offset 7 ≥ 7 last seen on redis-a (replication id not given)")


def test_a_standby_still_linked_is_judged_by_its_offset() -> None:
    """The primary may only be unreachable from drc; its replica still streams from it."""
    ok, why = judge(standby(offset=1000, down=None), seen(ago=2.0))
    assert ok and "redis-b still reports its link up (redis-a was last seen at" in why
    ok, why = judge(standby(offset=999, down=None), seen(ago=2.0))
    assert not ok and "below the 1000 last seen" in why

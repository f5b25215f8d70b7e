"""Judging a standby whose primary no longer answers, from what was seen while it did (pure).

After Orchestrator: a dead primary's standby is judged by the last state seen while the
primary was alive, never by what cannot be measured after it died. The monitor passes that
evidence (``LastSeen``); the standby's own ``INFO replication``, read now, says how long its
link has been down and how far it got. Both together say whether its link broke when the
primary died (fit) or before (it may lack acknowledged writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from activities.state.base import ReplicationInfo, link_text

LINK_DOWN_SLACK_S = 1.5
"""How much longer than the time since the primary was last seen a standby's link may have
been down and still count as broken by the primary's death. Redis 7.0 reports the duration as
the difference of two whole-second readings of its cached clock, so it reads up to a second
high (seen here: "1" 0.4 s after a SIGKILL); the other half second covers that cache and the
skew between the clocks of the worker whose watch last saw the primary and the guard's."""


@dataclass(frozen=True)
class LastSeen:
    """What the monitor last saw of the primary while it answered."""

    at: float = 0.0
    """Unix time (s) of the last sample in which the primary answered; 0 = never seen."""
    offset: int = -1
    """The primary's replication offset in that sample; -1 = unknown."""
    replid: str = ""
    """The primary's ``master_replid`` in that sample; empty = unknown (not compared)."""


@dataclass(frozen=True)
class Verdict:
    """Whether the standby may be promoted, and the sentence that says why."""

    ok: bool
    reason: str


def judge_standby(
    primary: str, standby: str, info: ReplicationInfo, seen: LastSeen, now: float
) -> Verdict:
    """Judge ``standby`` (its ``info`` read at ``now``) for promotion over dead ``primary``.

    In order: a standby that already reports itself primary is accepted (a half-finished
    earlier failover promoted it); without ``seen.at`` nothing can be judged (refused); a link
    down longer than the time since ``seen.at`` plus ``LINK_DOWN_SLACK_S`` (or since the
    standby started) broke before the primary died (refused); an offset in another
    replication id than ``seen.replid`` cannot be compared, and one below ``seen.offset``
    lacks bytes the primary had (refused); anything else is accepted.
    """
    if info.role == "master":
        return Verdict(
            True,
            f"{primary} does not answer; {standby} already reports itself primary (offset "
            f"{info.offset}), as a half-finished earlier failover leaves it: nothing to catch up",
        )
    if seen.at <= 0:
        return Verdict(
            False,
            f"{primary} does not answer and was never seen answering (no primary_last_seen): "
            f"{standby} (offset {info.offset}, link {link_text(info)}) cannot be judged "
            "(--force overrides)",
        )
    ago = now - seen.at
    last = f"{primary} was last seen at {_clock(seen.at)}"
    if (refused := _link_refusal(primary, standby, info, ago, last)) is not None:
        return refused
    if (refused := _offset_refusal(primary, standby, info, seen)) is not None:
        return refused
    link = _link_said(standby, info, f"{last} ({ago:.1f} s ago)")
    return Verdict(True, f"{primary} does not answer; {link}; {_offset_said(primary, info, seen)}")


def _link_refusal(
    primary: str, standby: str, info: ReplicationInfo, ago: float, last: str
) -> Verdict | None:
    down = info.link_down_since_s
    if info.link_up:
        return None
    if down is None or down < 0:
        since = "for a time it does not report" if down is None else f"since {standby} started"
        return Verdict(
            False,
            f"{standby}'s link to {primary} has been down {since}, and {last}: it may lack "
            f"acknowledged writes (offset {info.offset})",
        )
    if down > ago + LINK_DOWN_SLACK_S:
        return Verdict(
            False,
            f"{standby}'s link to {primary} has been down {down:g} s, longer than the {ago:.1f} s "
            f"since {last} (+{LINK_DOWN_SLACK_S:g} s slack): it stopped replicating before "
            f"{primary} died and may lack acknowledged writes (offset {info.offset})",
        )
    return None


def _offset_refusal(
    primary: str, standby: str, info: ReplicationInfo, seen: LastSeen
) -> Verdict | None:
    if seen.offset < 0:
        return None
    if seen.replid and info.replication_id != seen.replid:
        return Verdict(
            False,
            f"{standby}'s offset {info.offset} counts in replication id "
            f"{info.replication_id or '?'}, not {seen.replid} in which {primary} was last seen "
            f"at offset {seen.offset}: the two cannot be compared",
        )
    if info.offset < seen.offset:
        return Verdict(
            False,
            f"{standby} holds offset {info.offset}, below the {seen.offset} last seen on "
            f"{primary}: {seen.offset - info.offset} bytes {primary} had are missing",
        )
    return None


def _link_said(standby: str, info: ReplicationInfo, when: str) -> str:
    if info.link_up:  # the primary may be alive, only not to drc; it is fenced in traffic
        return f"{standby} still reports its link up ({when})"
    down = info.link_down_since_s
    return f"{standby}'s link went down {down:g} s ago (whole seconds), after {when}"


def _offset_said(primary: str, info: ReplicationInfo, seen: LastSeen) -> str:
    if seen.offset < 0:
        return f"offset {info.offset} not compared (no offset was seen on {primary})"
    replid = f" in replication id {seen.replid}" if seen.replid else " (replication id not given)"
    return f"offset {info.offset} ≥ {seen.offset} last seen on {primary}{replid}"


def _clock(at: float) -> str:
    """``12:34:56.789 UTC``: the time of day is enough to place it in a report's timeline."""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"

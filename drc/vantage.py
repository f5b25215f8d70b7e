"""Quorum of vantage points (pure): whether a replica is down, or one view of it went dark.

After Sentinel's ODOWN: a replica that drc's own watch sees failed is *objectively* down only
when a majority of the catalog's vantage points see it down too (drc's watch votes as the
vantage point it probes from, ``watch_from``). Down from fewer is ``partitioned``: raised,
never repaired, because the replica may well be serving everyone else. A vantage point that
does not answer (its worker gone) votes neither way, with one exception: the vantage point of
the replica's own region. When it is silent and every vantage point that answers sees the
replica down, the region's probe workers are taken to be gone with the region, and their
silence counts as a down vote (issue 9: "its probe workers are gone while other vantage points
still see the region down"); one vantage point that still sees the replica up is enough to
keep it `partitioned`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drc.catalog import Replica


@dataclass
class VantageProbeInput:
    """Probe ``replica``'s heartbeat ``attempts`` times, ``gap_ms`` apart, from a vantage point."""

    replica: Replica
    timeout_ms: int
    attempts: int = 2
    gap_ms: int = 100


@dataclass
class VantageVote:
    """What one vantage point saw: down only if every attempt failed."""

    vantage: str
    down: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """Objectively down or not, with the sentence that says who saw what."""

    down: bool
    reason: str


def quorum(
    replica: str,
    configured: Sequence[str],
    votes: Sequence[VantageVote],
    region: str | None = None,
) -> Verdict:
    """Down when at least a majority of the ``configured`` vantage points voted down.

    With ``region`` (the replica's), that region's vantage point, when silent while nobody
    sees the replica up, counts as down (see the module's docstring).
    """
    needed = len(configured) // 2 + 1
    down = sorted(v.vantage for v in votes if v.down)
    up = sorted(v.vantage for v in votes if not v.down)
    silent = sorted(set(configured) - {v.vantage for v in votes})
    seen = f"down from {', '.join(down) or 'none'}; up from {', '.join(up) or 'none'}"
    if silent:
        seen += f"; no answer from {', '.join(silent)}"
    if len(down) >= needed:
        return Verdict(
            True,
            f"{replica} is down from {len(down)} of {len(configured)} vantage "
            f"points (quorum {needed}): {seen}",
        )
    if region in silent and down and not up and len(down) + 1 >= needed:
        return Verdict(
            True,
            f"{replica} is down from every vantage point that answers and its own region's "
            f"({region}) is silent, its probe workers gone with the region: counted down, "
            f"{len(down) + 1} of {len(configured)} (quorum {needed}): {seen}",
        )
    return Verdict(
        False,
        f"{replica} is partitioned, not down: {seen} (quorum {needed} of {len(configured)}); "
        "not repaired while others may still reach it",
    )

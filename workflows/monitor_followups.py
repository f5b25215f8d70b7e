"""What follows a repair's end, and the monitor's due items (rechecks, freeze expiry).

Every end of a repair is an event here (design notes): completed, failed, cancelled,
terminated or timed out. None of them may leave the monitor believing a repair still runs,
and none may leave a service down that a further repair could bring back.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from drc.model import ReplicaState
    from drc.repair import RepairEnd
    from drc.sync import AliveSample, SyncStats
from workflows.monitor_core import Due
from workflows.monitor_repairs import MAX_REPROTECT_ATTEMPTS, Repairs
from workflows.monitor_types import RunningRepair

UNFINISHED = ("terminated", "timed_out")
"""Ends without compensation: the repair's steps may be half done."""


async def follow_end(r: Repairs, repair: RunningRepair, end: RepairEnd) -> None:
    """Record how ``repair`` ended and start what must follow."""
    if repair.kind == "restart":
        _restart_ended(r, repair, end)
    elif repair.kind.startswith("failover"):
        await _failover_ended(r, repair, end)
    elif repair.kind.startswith("reprotect"):
        _reprotect_ended(r, repair, end)
    else:
        await _runbook_ended(r, repair, end)
    if repair.kind != "restart":
        _recheck_after(r, repair)


def settle_s(r: Repairs) -> float:
    """Time for the watch to see a repaired replica answer again (recovery plus a margin)."""
    probe = r.svc.probe
    return (probe.recovery_threshold + probe.failure_threshold + 2) * probe.interval_ms / 1000


def _recheck_after(r: Repairs, repair: RunningRepair) -> None:
    """Look again at every replica a repair held back; those it worked on once they settle.

    A replica the repair just brought back may still read failed until the watch has seen
    enough good heartbeats: looking at it at once would restart a healthy replica.
    """
    touched = set(repair.params.values()) | {repair.replica}
    for spec in r.svc.replicas:
        r.c.schedule(settle_s(r) if spec.name in touched else 0, spec.name)


def _outcome(end: RepairEnd) -> str:
    if end.status == "completed" and end.runbook is not None:
        return "done" if end.runbook.outcome == "succeeded" else end.runbook.outcome
    if end.status == "failed" and end.runbook is not None:
        return end.runbook.outcome
    return end.status


def _restart_ended(r: Repairs, repair: RunningRepair, end: RepairEnd) -> None:
    replica = repair.replica or ""
    if end.succeeded:
        r.c.decide(replica, "restarted", end.message)
        # If no healthy transition arrives by then, the replica failed again in between.
        r.c.schedule(settle_s(r), replica)
        return
    backoff = min(2 ** max(len(r.c.repair_of(replica).restarts) - 1, 0), 30)
    if end.status == "failed":
        r.c.decide(replica, "restart-failed", end.message)
    else:
        why = f"{end.message}; looking at {replica} again in {backoff} s"
        r.c.decide(replica, f"restart-{end.status}", why, severity="high")
    r.c.schedule(backoff, replica)


async def _failover_ended(r: Repairs, repair: RunningRepair, end: RepairEnd) -> None:
    st, c = r.c.st, r.c
    old, new = repair.params.get("from_replica"), repair.params.get("to_replica")
    if end.succeeded and old is not None and new is not None:
        c.decide(new, f"{repair.kind}-done", end.message)
        st.primary, st.sync = new, {}  # lag is measured against the new primary from now on
        c.interrupt = True
        old_repair = c.repair_of(old)
        old_repair.crash_looping, old_repair.note = False, None
        st.reprotect_attempts = 0
        if c.fleet is not None and c.fleet.hold_for_evacuation(old, "re-protecting"):
            st.unprotected = old  # owed: the evacuation re-protects it when its region returns
            return
        await r.reprotect(old, new)
        return
    if end.status in UNFINISHED:
        c.decide(
            old,
            f"{repair.kind}-{end.status}",
            f"{end.message} before it finished: its steps may be half done; finishing the "
            f"failover to {new} (every step converges)",
            severity="critical",
        )
        why = f"finishing the failover to {new} that was {end.status.replace('_', ' ')}"
        if await r.failover(why, wanted=new, force=repair.forced) is None:
            c.schedule(0, old)  # refused: restarting the old primary is what is left
        return
    st.failover_failures.append(c.now())
    why = f"{end.message}; the old primary {old} stays primary and is looked at again"
    c.decide(old, f"{repair.kind}-{_outcome(end)}", why, severity="critical")
    c.schedule(0, old)


def _reprotect_ended(r: Repairs, repair: RunningRepair, end: RepairEnd) -> None:
    c, old = r.c, repair.replica or ""
    name = f"{repair.kind}-{_outcome(end)}"
    if end.succeeded:
        c.st.unprotected, c.st.reprotect_attempts = None, 0
        c.decide(old, name, end.message)
        if r.svc.stateful and c.st.primary is not None:
            # Its last step waited until the standby's link was up and its offset equal to the
            # primary's: that is a sample taken while the primary answered, and the evidence a
            # failover right now is judged by (the watch's own samples follow within a second).
            c.st.sync[old] = in_sync_now(old, c.st.primary, c.now())
            c.interrupt = c.reset_watch = True
        return
    c.st.reprotect_attempts = repair.attempt
    service = r.svc.name
    if end.status == "cancelled":
        why = f"{end.message}; {old} is not a standby: drc reprotect {service} runs it again"
        c.decide(old, name, why, severity="high")
        return
    if repair.attempt >= MAX_REPROTECT_ATTEMPTS:
        why = (
            f"{end.message}; gave up after {repair.attempt} attempts: {c.st.primary} runs without "
            f"a standby (drc reprotect {service} tries again)"
        )
        c.decide(old, name, why, severity="critical")
        return
    backoff = 2**repair.attempt
    why = f"{end.message}; re-protecting {old} again in {backoff} s"
    c.decide(old, name, why, severity="high")
    c.schedule(backoff, old, "reprotect")


async def _runbook_ended(r: Repairs, repair: RunningRepair, end: RepairEnd) -> None:
    replica = repair.replica
    r.c.decide(replica, f"{repair.kind}-{_outcome(end)}", end.message)
    if repair.kind == "drain" and replica and end.status in UNFINISHED:
        # Stopped half way, the replica may stay out of rotation for good: run it again (drain,
        # wait until healthy, put back) so that it returns once healthy.
        why = f"{end.message}: draining {replica} again so that it returns once healthy"
        await r.runbook("drain", {"replica": replica}, why, "high", replica, subject=replica)


async def run_due(r: Repairs, item: Due) -> None:
    """Act on a due item: recheck a failed replica, end a freeze, re-protect again."""
    replica = item.replica
    if replica is None:
        for spec in r.svc.replicas:  # "recheck-all"
            await recheck(r, spec.name)
    elif item.kind == "unfreeze":
        unfreeze(r, replica, by=None)
    elif item.kind == "reprotect":
        if r.c.st.unprotected == replica:
            await r.reprotect_again(replica, f"{replica} is still not a standby")
    else:
        await recheck(r, replica)


async def recheck(r: Repairs, replica: str) -> None:
    """If ``replica`` is still failed and no repair works on it, decide on it again."""
    track = r.c.st.tracks.get(replica)
    if track is not None and track.state is ReplicaState.FAILED and not r.busy(replica):
        await r.on_failed(replica, track.last_error or "still failed", track.flapping)


def unfreeze(r: Repairs, replica: str, by: str | None) -> bool:
    """Lift ``replica``'s freeze (expired, or ``by`` an operator); whether there was one."""
    c = r.c
    repair = c.repair_of(replica)
    if repair.frozen_until is None:
        return False
    if by is None and repair.frozen_until > c.now() + 0.001:
        return False  # frozen again since this expiry was scheduled
    repair.frozen_until = None
    track = c.st.tracks.get(replica)
    if track is not None:  # a fresh window, or the old transitions would freeze it again
        track.transition_times, track.flapping = [], False
        c.interrupt = c.reset_watch = True
    if by is None:
        why = f"the freeze of {replica} expired: automatic restarts resume"
        c.decide(replica, "unfrozen", why, severity="info")
    else:
        c.decide(replica, "unfrozen", f"{by} lifted the freeze of {replica}")
    c.schedule(0, replica)
    return True


def in_sync_now(replica: str, primary: str, now: float) -> SyncStats:
    """A standby just verified in sync (equal offsets, link up) by a re-protection's last step."""
    seen = AliveSample(now, 0.0, True, -1, -1, "in_sync")
    return SyncStats(replica, primary, "in_sync", link_up=True, since=now, last_alive=seen)

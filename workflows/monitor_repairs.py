"""The monitor's repair choices, applied: failover, drain, restart, freeze, re-protect.

The choices themselves are pure (``drc.policy``); this module applies them to the monitor's
state, starts the repair workflows, and decides what follows each repair's end, however it
ended: a finished failover adopts the new primary and re-protects the old one; an unfinished
one (terminated) is finished, since every failover step converges; a compensated one falls
back to restarting the old primary.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from drc.catalog import Redundancy, Service
    from drc.names import restart_id, runbook_id
    from drc.policy import (
        StandbyChoice,
        choose_standby,
        drain_verdict,
        freeze_reason,
        restart_verdict,
    )
    from drc.repair import RestartInput
from workflows.monitor_core import MonitorCore
from workflows.monitor_types import RunningRepair
from workflows.runbook import RunbookInput
from workflows.vantage_check import objectively_down

MAX_REPROTECT_ATTEMPTS = 3
PATCH_UNREACHABLE = "unreachable-primary"


class Repairs:
    """Repair decisions of one monitor; every one is recorded with its sentence."""

    def __init__(self, core: MonitorCore) -> None:
        self.c = core

    @property
    def svc(self) -> Service:
        """The service, as the catalog describes it now."""
        return self.c.cfg.service

    # --- names and leases ---------------------------------------------------------------------

    def runbook_name(self, kind: str) -> str:
        """``failover``/``reprotect``, or their ``-state`` forms for replicated state."""
        return f"{kind}-state" if self.svc.stateful else kind

    def failover_id(self) -> str:
        """``failover/<service>`` (or ``failover-state/...``): one failover at a time."""
        return runbook_id(self.runbook_name("failover"), self.c.key)

    def reprotect_id(self) -> str:
        """``reprotect/<service>`` (or ``reprotect-state/...``)."""
        return runbook_id(self.runbook_name("reprotect"), self.c.key)

    def owned(self, replica: str) -> bool:
        """A failover or re-protection is working on ``replica``: nothing else may touch it."""
        return any(
            r.kind.startswith(("failover", "reprotect")) and replica in r.params.values()
            for r in self.c.st.running.values()
        )

    def busy(self, replica: str) -> bool:
        """A restart, failover or re-protection is working on ``replica``."""
        return self.c.restarting(replica) or self.owned(replica)

    def failover_blocker(self) -> tuple[str, str | None] | None:
        """Why no failover may start now and what the operator can do; None when one may."""
        svc = self.svc
        if svc.redundancy is not Redundancy.ACTIVE_STANDBY:
            return f"{svc.name} is {svc.redundancy.value}: only active-standby fails over", None
        if not svc.failover.enabled:
            return f"failover is disabled for {svc.name} in the catalog", "drc reload"
        if self.runbook_name("failover") not in self.c.cfg.runbooks:
            return f"no {self.runbook_name('failover')} runbook is loaded", "drc reload"
        if (running := self.c.st.running.get(self.reprotect_id())) is not None:
            rid = self.reprotect_id()
            return (
                f"{running.replica} is still being re-protected ({rid})",
                f"wait for it, or stop it: temporal workflow cancel --workflow-id {rid}",
            )
        return None

    def choose(self, wanted: str | None, force: bool) -> StandbyChoice:
        """``drc.policy.choose_standby`` on this monitor's knowledge."""
        st = self.c.st
        return choose_standby(self.svc, st.primary, st.tracks, st.sync, wanted, force)

    def failover_refusal(self, wanted: str | None, force: bool) -> str | None:
        """Why a failover to ``wanted`` would be refused now, override included; None if not."""
        if self.failover_id() in self.c.st.running:
            return None  # attaches to the running one
        if (blocked := self.failover_blocker()) is not None:
            return refusal(self.svc.name, *blocked)
        choice = self.choose(wanted, force)
        return None if choice.target else refusal(self.svc.name, choice.reason, choice.override)

    # --- a failed replica ---------------------------------------------------------------------

    async def on_failed(self, replica: str, why: str, flapping: bool) -> None:
        """Decide on a failed replica: fail over, drain, restart, freeze, or say why not."""
        st = self.c.st
        if self.busy(replica) or self.c.repair_of(replica).crash_looping:
            return
        if replica == st.unprotected:
            await self.reprotect_again(replica, f"{replica} failed before it was re-protected")
            return
        if self.c.fleet is not None and not await self.c.fleet.gate(replica, why):
            return  # held by a root cause, or the storm brake: said why
        verdict = await objectively_down(self.c, replica)
        if verdict is not None and not verdict.down:
            self.c.detected("partitioned", replica, "high")
            self.c.decide(replica, "partitioned", verdict.reason, severity="high")
            self.c.schedule(max(2.0, self._detect_s()), replica)  # ask again
            return
        if verdict is not None:
            self.c.decide(replica, "objectively-down", verdict.reason)
        if (unreachable := self._still_replicated_from(replica)) is not None:
            self.c.detected("unreachable", replica, "high")
            self.c.decide(replica, "unreachable", unreachable, severity="high")
            self.c.schedule(max(1.0, self._detect_s()), replica)  # until its standbys agree
            return
        if replica == st.primary and self._fails_over_first(flapping):
            flap = (
                f"; {replica} is flapping: its restarts are frozen, failing over keeps "
                f"{self.svc.name} serving"
                if flapping
                else ""
            )
            if await self.failover(f"{replica} failed: {why}{flap}") is not None:
                if flapping:
                    self.freeze(replica)
                return
        await self.drain(replica, why)
        await self._restart_or_hold(replica, why, flapping)

    async def _restart_or_hold(self, replica: str, why: str, flapping: bool) -> None:
        verdict = restart_verdict(
            self.svc, replica, self.c.repair_of(replica), flapping, self.c.now()
        )
        if verdict.action == "restart":
            await self.restart(replica, f"{replica} failed: {why}", "high")
        elif verdict.action == "freeze":
            self.freeze(replica)
        elif verdict.action == "crash-looping":
            self.c.decide(replica, "crash-looping", verdict.reason, severity="high")
            if replica == self.c.st.primary and self._may_fail_over():
                await self.failover(f"{replica} is crash-looping: {why}")
        elif verdict.action == "no-action":
            self.c.decide(replica, "no-action", verdict.reason)

    def _still_replicated_from(self, replica: str) -> str | None:
        """Orchestrator's rule: a primary drc cannot reach is dead only if its standbys say so.

        While a standby still reports a live replication link to it, it is unreachable from
        drc, not dead, and is not failed over. A process that process control saw die needs
        no corroboration.
        """
        st, svc = self.c.st, self.svc
        track = st.tracks.get(replica)
        if not svc.stateful or replica != st.primary or (track and track.dead is not None):
            return None
        live = sorted(s.replica for s in st.sync.values() if s.link_up and not s.primary_reachable)
        if not live or not workflow.patched(PATCH_UNREACHABLE):
            return None
        return (
            f"{replica} does not answer drc, but {', '.join(live)} still replicate(s) from it "
            "(replication link up): unreachable from drc, not dead; not failing over until "
            "its standbys lose it too"
        )

    def _detect_s(self) -> float:
        probe = self.svc.probe
        return probe.failure_threshold * probe.interval_ms / 1000

    def freeze(self, replica: str) -> None:
        """Hold ``replica``'s automatic restarts for ``flap_freeze_s``: loud, and bounded."""
        freeze_s = self.svc.thresholds.flap_freeze_s
        self.c.repair_of(replica).frozen_until = self.c.now() + freeze_s
        reason = freeze_reason(self.svc.name, replica, freeze_s)
        self.c.decide(replica, "frozen", reason, severity="high")
        self.c.schedule(freeze_s, replica, "unfreeze")

    def _may_fail_over(self) -> bool:
        """Failover is possible and did not fail within the crash-loop window."""
        if self.failover_blocker() is not None:
            return False
        now, window = self.c.now(), self.svc.restart.crash_loop_window_s
        st = self.c.st
        st.failover_failures = [t for t in st.failover_failures if now - t < window]
        return not st.failover_failures

    def _fails_over_first(self, flapping: bool) -> bool:
        # A flapping primary is not restarted (frozen): failing over is the way to serve.
        first = self.svc.failover.first == "failover" or flapping
        return first and self._may_fail_over()

    async def failover(
        self, why: str, wanted: str | None = None, operator: str | None = None, force: bool = False
    ) -> str | None:
        """Start (or attach to) the failover; its id, or None when refused (decision recorded)."""
        st, svc = self.c.st, self.svc
        wid = self.failover_id()
        if wid in st.running:
            return wid
        refused = self.failover_refusal(wanted, force)
        choice = self.choose(wanted, force)
        if refused is not None or choice.target is None:
            self.c.decide(st.primary, "no-failover", f"{refused} ({why})", severity="critical")
            return None
        old, target = st.primary or "", choice.target
        params = {"from_replica": old, "to_replica": target}
        trigger = f"failing over {svc.name} from {old} to {target}: {why}; {choice.reason}"
        if force:
            trigger += f"; FORCED by {operator or 'an operator'}: replication guards skipped"
        if svc.stateful:
            params.update(self.state_evidence(old, target, force))
        severity = "forced" if force else ("operator" if operator else "critical")
        name = self.runbook_name("failover")
        await self.runbook(name, params, trigger, severity, old, forced=force)
        return wid

    def state_evidence(self, old: str, target: str, force: bool) -> dict[str, str]:
        """The evidence the caught-up guard judges a dead primary by.

        When it last answered a heartbeat, and the offset it had in the last lag sample taken
        while it answered.
        """
        track, stats = self.c.st.tracks.get(old), self.c.st.sync.get(target)
        seen = stats.last_alive if stats is not None else None
        lag = self.svc.failover.max_lag_on_failover_ms
        return {
            "max_lag_ms": "-1" if force else f"{lag:g}",
            "primary_last_seen": f"{(track.last_ok_at or 0) if track else 0:.3f}",
            "min_offset": str(seen.primary_offset if seen is not None else -1),
        }

    async def drain(self, replica: str, why: str) -> None:
        """Take a failed active-active replica out of rotation, never the last one in it."""
        svc = self.svc
        if svc.redundancy is not Redundancy.ACTIVE_ACTIVE or svc.frontend is None:
            return
        if "drain" not in self.c.cfg.runbooks:
            return
        drained = {r.replica for r in self.c.st.running.values() if r.kind == "drain" and r.replica}
        verdict = drain_verdict(svc, replica, drained)
        if verdict.action == "drain":
            trigger = f"draining {replica} of {svc.name}: {replica} failed: {why}"
            await self.runbook(
                "drain", {"replica": replica}, trigger, "high", replica, subject=replica
            )
        elif replica not in drained:
            self.c.decide(replica, "no-drain", verdict.reason, severity="high")

    async def restart(self, replica: str, reason: str, severity: str) -> str:
        """Start ``restart/<service>/<replica>``; counts towards the crash-loop window."""
        svc, c = self.svc, self.c
        spec = svc.replica(replica)
        assert spec is not None
        c.repair_of(replica).restarts.append(c.now())
        wid = restart_id(c.key, replica)
        c.decide(replica, "restart", f"restarting {replica}: {reason}")
        inp = RestartInput(
            service=svc.name,
            replica=spec,
            supervisor_url=c.cfg.supervisor_url,
            health_timeout_s=svc.restart.health_timeout_s,
            reason=reason,
            monitor_workflow_id=workflow.info().workflow_id,
        )
        await c.start_restart(
            wid, RunningRepair("restart", replica, {}, reason, c.now()), inp, severity
        )
        return wid

    async def reprotect(
        self, old: str, new: str, attempt: int = 1, operator: str | None = None
    ) -> str | None:
        """Bring the former primary ``old`` back as the standby of ``new``."""
        name = self.runbook_name("reprotect")
        self.c.st.unprotected = old
        if not self.svc.failover.reprotect or name not in self.c.cfg.runbooks:
            self.c.decide(
                old, "no-reprotect", f"re-protection is off for {self.svc.name}: {old} stays out"
            )
            return None
        params = {"old_primary": old}
        if self.svc.stateful:
            params["new_primary"] = new
        who = f" ({operator} asked)" if operator else ""
        trigger = f"re-protecting {self.svc.name}{who}: {old} returns as the standby of {new}"
        if attempt > 1:
            trigger += f" (attempt {attempt} of {MAX_REPROTECT_ATTEMPTS})"
        await self.runbook(name, params, trigger, "high", old, attempt=attempt)
        return self.reprotect_id()

    async def reprotect_again(self, old: str, why: str) -> None:
        """Re-protect ``old`` once more, unless attempts ran out or one runs."""
        attempt = self.c.st.reprotect_attempts + 1
        if self.reprotect_id() in self.c.st.running or self.c.st.primary is None:
            return
        if attempt > MAX_REPROTECT_ATTEMPTS:
            return  # gave up, loudly, when the last attempt ended
        if self.c.fleet is not None and self.c.fleet.hold_for_evacuation(old, "re-protecting"):
            return
        self.c.decide(old, "reprotect-again", f"{why}: re-protecting it again")
        await self.reprotect(old, self.c.st.primary, attempt)

    async def runbook(
        self,
        name: str,
        params: dict[str, str],
        trigger: str,
        severity: str,
        replica: str | None,
        subject: str | None = None,
        forced: bool = False,
        attempt: int = 1,
    ) -> str:
        """Start runbook ``name`` as ``<name>/<service>[/<subject>]``, or attach to it."""
        c = self.c
        wid = runbook_id(name, c.key, subject)
        if wid in c.st.running:
            return wid
        c.decide(params.get("replica") or params.get("to_replica") or replica, name, trigger)
        inp = RunbookInput(
            runbook=c.cfg.runbooks[name],
            params=params,
            service=self.svc,
            supervisor_url=c.cfg.supervisor_url,
            allowed_commands=list(c.cfg.allowed_commands),
            trigger=trigger,
            monitor_workflow_id=workflow.info().workflow_id,
        )
        repair = RunningRepair(
            name, replica, params, trigger, c.now(), forced=forced, attempt=attempt
        )
        await c.start_runbook(wid, repair, inp, severity)
        return wid


def refusal(service: str, reason: str, override: str | None) -> str:
    """A refusal sentence that names what overrides it, when anything does."""
    tail = f" (override: {override})" if override else ""
    return f"cannot fail over {service}: {reason}{tail}"

"""A monitor's side of the fleet: its reports, the directives it takes, its repair gate.

Deterministic workflow code. Behind the ``fleet`` patch: monitors from before the fleet replay
without it. A monitor without ``MonitorConfig.fleet`` judges alone (nothing here applies).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from drc.fleet import FleetDirective, ServiceHealthReport, TokenGrant, TokenRequest
    from drc.model import ReplicaState
    from drc.names import evacuation_id
from workflows.monitor_core import MonitorCore

PATCH_FLEET = "fleet"
PATCH_REPORT_IN_BACKGROUND = "fleet-report-in-background"


class FleetLink:
    """See the module docstring."""

    def __init__(self, core: MonitorCore) -> None:
        self.c = core
        self._unreachable = False
        self._sending: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether the monitor reports to a fleet (and replays a history that did)."""
        return self.c.cfg.fleet is not None and workflow.patched(PATCH_FLEET)

    # --- reports --------------------------------------------------------------------------------

    async def report(self) -> None:
        """Tell the fleet how the service stands, if that changed since the last report."""
        if not self.enabled or self.c.st.paused:
            return
        report = self._report()
        key = repr(
            (
                report.health,
                report.failed_replicas,
                report.regions_down,
                report.incident_id,
                report.repairing,
            )
        )
        if key == self.c.st.fleet_sent or key == self._sending:
            return
        if not workflow.patched(PATCH_REPORT_IN_BACKGROUND):
            if await self._signal("report", report):
                self.c.st.fleet_sent = key
            return
        # Sent in the background: the monitor's loop (a repair's next step) never waits for
        # the fleet's server round trip.
        self._sending = key
        asyncio.get_running_loop().create_task(self._send(report, key))

    async def _send(self, report: ServiceHealthReport, key: str) -> None:
        try:
            if await self._signal("report", report):
                self.c.st.fleet_sent = key
        finally:
            if self._sending == key:
                self._sending = None

    def _report(self) -> ServiceHealthReport:
        st, svc = self.c.st, self.c.cfg.service
        failed = sorted(n for n, t in st.tracks.items() if t.state is ReplicaState.FAILED)
        regions: dict[str, list[str]] = {}
        for replica in svc.replicas:
            regions.setdefault(replica.region, []).append(replica.name)
        regions_down = sorted(r for r, names in regions.items() if all(n in failed for n in names))
        incident = st.incident
        health = st.availability if st.availability in ("up", "degraded", "down") else "up"
        return ServiceHealthReport(
            service=svc.name,
            health=health,  # type: ignore[arg-type]
            at=self.c.now(),
            failed_replicas=failed,
            regions_down=regions_down,
            incident_id=incident.id if incident else None,
            cause=incident.cause if incident else "",
            repairing=bool(st.running),
            monitor=workflow.info().workflow_id,
            primary=st.primary,
        )

    async def _signal(self, name: str, arg: object) -> bool:
        fleet = self.c.cfg.fleet
        assert fleet is not None
        try:
            await workflow.get_external_workflow_handle(fleet).signal(name, arg)
        except ApplicationError as err:
            if not self._unreachable:  # said once per run, not on every report
                workflow.logger.warning("cannot reach the fleet %s: %s", fleet, err)
            self._unreachable = True
            return False
        self._unreachable = False
        return True

    # --- directives -----------------------------------------------------------------------------

    def directive(self, directive: FleetDirective) -> None:
        """Take the fleet's word: a hold by a root cause, the brake's mode."""
        c, st = self.c, self.c.st
        name = c.cfg.service.name
        if directive.held_by != st.held_by:
            if directive.held_by is not None:
                why = (
                    f"{name} depends on {directive.held_by}, which is down: {directive.held_by} "
                    f"is the root cause and holds the recovery lease; automatic repairs of "
                    f"{name} wait until it is back"
                )
                c.decide(None, "held", why)
            else:
                why = f"{st.held_by} is back: {name}'s automatic repairs resume"
                c.decide(None, "released", why)
                c.schedule(0, None, "recheck-all")  # still failed on its own? repair it now
            st.held_by = directive.held_by
        st.root_incident = directive.root_incident
        self._take_evacuating(directive.evacuating)
        if directive.mode != st.brake:
            severity = "critical" if directive.mode != "normal" else None
            c.decide(None, f"brake-{directive.mode}", directive.reason, severity=severity)
            st.brake = directive.mode
            if directive.mode == "normal":
                st.tokens_waiting.clear()
                st.tokens_granted.clear()
                c.schedule(0, None, "recheck-all")
        st.brake_reason = directive.reason

    def _take_evacuating(self, regions: list[str]) -> None:
        c, st = self.c, self.c.st
        if regions == st.evacuating:
            return
        ended = [r for r in st.evacuating if r not in regions]
        st.evacuating = list(regions)
        if ended:
            # The evacuation ended (the region returned, or it was stopped): re-protection
            # attempts start afresh and every failed replica is looked at again.
            st.reprotect_attempts = 0
            why = f"the evacuation of {', '.join(ended)} ended: its replicas are repaired again"
            c.decide(None, "evacuation-ended", why, severity="info")
            c.schedule(0, None, "recheck-all")

    def evacuated_region(self, replica: str) -> str | None:
        """The region being evacuated that ``replica`` is in, if any (its repairs wait)."""
        spec = self.c.cfg.service.replica(replica)
        if spec is None or spec.region not in self.c.st.evacuating:
            return None
        return spec.region

    def hold_for_evacuation(self, replica: str, what: str) -> bool:
        """Whether ``what`` of ``replica`` waits for its region's evacuation (said if so)."""
        region = self.evacuated_region(replica)
        if region is None:
            return False
        self.c.decide(
            replica,
            "held",
            f"not {what} {replica}: {region} is being evacuated ({evacuation_id(region)}), "
            f"which takes {region}'s replicas back when the region returns",
        )
        return True

    def granted(self, grant: TokenGrant) -> None:
        """The fleet's leave for a paced repair: take it and look at the replica now."""
        st = self.c.st
        if st.tokens_waiting.get(grant.replica) != grant.seq:
            return  # an old grant: that request was answered or dropped
        del st.tokens_waiting[grant.replica]
        st.tokens_granted.append(grant.replica)
        self.c.schedule(0, grant.replica)

    # --- the repair gate ------------------------------------------------------------------------

    async def gate(self, replica: str, why: str) -> bool:
        """Whether an automatic repair of ``replica`` may start now; if not, say why (once)."""
        if not self.enabled:
            return True
        c, st = self.c, self.c.st
        if self.hold_for_evacuation(replica, f"repairing ({why})"):
            return False
        track = st.tracks.get(replica)
        # A replica whose process is gone (process control says so) failed on its own: it
        # will not come back when its dependency does, so the hold does not apply to it.
        if st.held_by is not None and (track is None or track.dead is None):
            c.decide(
                replica,
                "held",
                f"not repairing {replica} ({why}): {st.held_by}, a dependency, is down and "
                f"is being repaired first; {replica} is looked at again when it is back",
            )
            return False
        if st.brake == "frozen":
            c.decide(replica, "brake-frozen", f"not repairing {replica}: {st.brake_reason}")
            return False
        if st.brake != "paced":
            return True
        if replica in st.tokens_granted:
            st.tokens_granted.remove(replica)
            return True
        if replica not in st.tokens_waiting:
            st.token_seq += 1
            st.tokens_waiting[replica] = st.token_seq
            request = TokenRequest(
                c.cfg.service.name, replica, st.token_seq, workflow.info().workflow_id
            )
            await self._signal("request_token", request)
            c.decide(
                replica, "paced", f"waiting for a repair token for {replica}: {st.brake_reason}"
            )
        return False

"""How a monitor watches its service: through its watch group, or with its own activity.

Grouped (``MonitorConfig.watch_group``): the monitor registers a ``WatchSpec`` with its group
(a signal; a new generation whenever the watch must start again from the monitor's tracks) and
applies the ``watch_report`` signals the group's activity sends, each once. Alone (no group, or
the group cannot be reached): one ``watch_service`` activity that returns on a transition.
Either way the results are applied the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityHandle

with workflow.unsafe.imports_passed_through():
    from drc.model import ReplicaState
    from drc.names import WATCH_SERVICE
    from drc.watch import WatchInput, WatchResult, WatchSpec
from workflows.monitor_core import MonitorCore
from workflows.monitor_repairs import Repairs

WATCH_HEARTBEAT_TIMEOUT = timedelta(seconds=5)
WATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5)
)
DETECTED = (ReplicaState.FAILED, ReplicaState.DEGRADED)
"""Transitions to these states are detections (``drc_detections_total``, kind = the state)."""


def watch_inputs(c: MonitorCore) -> str:
    """What the watch depends on; a new watch generation only when it changed (or a reset).

    Not the primary of a service without replicated state: the watch probes every replica
    the same way whichever is primary, and restarting it would only lose its counters (and,
    grouped, the reports of the old generation until the group has the new one).
    """
    primary = c.st.primary if c.cfg.service.stateful else None
    return repr((c.cfg.service, c.cfg.supervisor_url, c.st.paused, primary))


class Watching:
    """The monitor's watch, grouped or alone, and how its results are applied."""

    def __init__(
        self,
        core: MonitorCore,
        repairs: Repairs,
        pending: Callable[[], Awaitable[None]],
        leaving: Callable[[], bool],
    ) -> None:
        self.c, self._repairs = core, repairs
        self._pending, self._leaving = pending, leaving
        self._alone = False  # the group could not be reached this run: watch alone

    async def round(self) -> None:
        """Watch until there is something to change (new generation, pause, leave)."""
        if self.c.cfg.watch_group is not None and not self._alone:
            if await self._register():
                await self._grouped()
                return
        if self.c.st.paused:
            await workflow.wait_condition(lambda: not self.c.st.paused or self._woken())
            await self._pending()
            return
        await self._alone_round()

    def _woken(self) -> bool:
        return self.c.wake() or self._leaving()

    # --- grouped -------------------------------------------------------------------------------

    async def _register(self) -> bool:
        """Register this generation's spec with the group (once); False if it is unreachable."""
        c, st = self.c, self.c.st
        group = c.cfg.watch_group
        assert group is not None
        key = f"{group}@{st.watch_generation}"
        if st.registered == key:
            return True
        if st.registered and not st.registered.startswith(f"{group}@"):
            await self.unwatch(st.registered.split("@", 1)[0])
        inputs = watch_inputs(c)  # of the spec sent: an update may change them while it goes
        spec = WatchSpec(
            service=c.cfg.service,
            monitor_id=workflow.info().workflow_id,
            generation=st.watch_generation,
            tracks=st.tracks,
            primary=st.primary,
            sync=st.sync,
            supervisor_url=c.cfg.supervisor_url,
            paused=st.paused,
            seq_floor=st.watch_seq,
        )
        try:
            await workflow.get_external_workflow_handle(group).signal("watch", spec)
        except ApplicationError as err:
            why = (
                f"cannot register with watch group {group} ({err.message}): watching "
                f"{c.cfg.service.name} with its own activity until the group is back "
                "(drc reload starts it)"
            )
            c.decide(None, "watch-alone", why, severity="high")
            self._alone = True
            return False
        st.registered, st.watch_inputs = key, inputs
        return True

    async def unwatch(self, group: str | None = None) -> None:
        """Leave the group (retired, or moved to another group); a group already gone is fine."""
        group = group or self.c.cfg.watch_group
        if group is None:
            return
        try:
            await workflow.get_external_workflow_handle(group).signal(
                "unwatch", self.c.cfg.service.name
            )
        except ApplicationError:
            pass  # nothing to leave
        self.c.st.registered = None

    async def _grouped(self) -> None:
        c = self.c
        while not (c.interrupt or self._leaving()):
            try:
                await workflow.wait_condition(
                    lambda: bool(c.reports) or self._woken(), timeout=c.until_next_due()
                )
            except TimeoutError:
                pass  # a due item's time came
            await self._apply_reports()
            await self._pending()

    async def _apply_reports(self) -> None:
        st = self.c.st
        while self.c.reports:
            report = self.c.reports.pop(0)
            if report.generation != st.watch_generation or report.seq <= st.watch_seq:
                continue  # from an earlier watch, or delivered twice
            st.watch_seq = report.seq
            if st.paused:
                continue
            await self.apply(
                WatchResult(report.transitions, report.tracks, report.sync_events, report.sync)
            )

    # --- alone ---------------------------------------------------------------------------------

    async def _alone_round(self) -> None:
        c = self.c
        watch = workflow.start_activity(
            WATCH_SERVICE,
            WatchInput(
                c.cfg.service,
                c.st.tracks,
                c.cfg.watch_max_duration_s,
                primary=c.st.primary,
                sync=c.st.sync,
                supervisor_url=c.cfg.supervisor_url,
            ),
            result_type=WatchResult,
            start_to_close_timeout=timedelta(seconds=c.cfg.watch_max_duration_s + 120),
            heartbeat_timeout=WATCH_HEARTBEAT_TIMEOUT,
            retry_policy=WATCH_RETRY,
            summary=f"watch {c.cfg.service.name}",
        )
        while not watch.done():
            try:
                await workflow.wait_condition(
                    lambda: watch.done() or self._woken(), timeout=c.until_next_due()
                )
            except TimeoutError:
                pass  # a due item's time came
            await self._pending()
            if (c.interrupt or self._leaving()) and not watch.done():
                await _stop(watch)
                return
        try:
            result = watch.result()
        except ActivityError as err:  # only a non-retryable failure ends a watch this way
            c.decide(None, "watch-failed", f"the watch ended with an error: {err.cause}")
            await workflow.sleep(timedelta(seconds=1))
        else:
            await self.apply(result)

    # --- applying what the watch saw -----------------------------------------------------------

    async def apply(self, result: WatchResult) -> None:
        """Take the watch's tracks; record each sync event and transition; decide on failures."""
        c = self.c
        c.st.tracks, c.st.sync = result.tracks, result.sync
        for event in result.sync_events:
            if event.state == "sync_degraded":
                c.detected("sync-degraded", event.replica, "medium")
            c.decide(event.replica, event.state.replace("_", "-"), event.reason, at=event.at)
        for transition in result.transitions:
            c.st.last_transition = transition
            if transition.new in DETECTED:
                c.detected(transition.new.value, transition.replica, transition.severity)
            if transition.new is ReplicaState.FAILED and c.book is not None:
                c.book.on_failed(transition)  # first, so the incident keeps every decision
            c.decide(transition.replica, "transition", transition.reason, at=transition.at)
            if transition.new is ReplicaState.FAILED:
                await self._repairs.on_failed(
                    transition.replica, transition.reason, transition.flapping
                )
            elif transition.new in (ReplicaState.HEALTHY, ReplicaState.DEGRADED):
                if transition.new is ReplicaState.DEGRADED and c.book is not None:
                    c.book.on_degraded(transition)  # slow, erroring: serving, but reported
                self._on_recovered(transition.replica)

    def _on_recovered(self, replica: str) -> None:
        repair = self.c.repair_of(replica)
        if repair.crash_looping:
            self.c.decide(replica, "recovered", f"{replica} is serving again: crash loop cleared")
        repair.crash_looping, repair.note = False, None


async def _stop(watch: ActivityHandle[WatchResult]) -> None:
    watch.cancel()
    try:
        await watch
    except (ActivityError, CancelledError):
        pass  # cancelled on purpose: pause, reconfigure, new primary

"""WatchGroup: one per group of services; keeps one ``watch_group`` activity running for all.

Monitors register what to watch (``watch``, idempotent for an unchanged generation) and leave
(``unwatch``); each change raises the group's version, kept in its memo, from which the running
activity picks it up within a second. The activity runs for ``max_run_s`` and returns its
progress, which the next run resumes from; a worker's death is covered by the activity's
heartbeat (5 s) and its retry, which resumes from the last heartbeat.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from drc.names import WATCH_GROUP
    from drc.watch import GroupProgress, WatchGroupInput, WatchSpec

HEARTBEAT_TIMEOUT = timedelta(seconds=5)
# A dead worker's group is taken over within the heartbeat timeout plus this first retry.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5)
)
MAX_HISTORY = 5000


@workflow.defn(name="WatchGroup")
class WatchGroupWorkflow:
    """Runs the group's watch activity forever; see the module docstring."""

    @workflow.init
    def __init__(self, inp: WatchGroupInput) -> None:
        self._inp = inp

    @workflow.run
    async def run(self, inp: WatchGroupInput) -> None:
        """Run the activity again and again, carrying its progress; continue as new when long."""
        while not self._time_for_new_run():
            try:
                self._inp.progress = await workflow.execute_activity(
                    WATCH_GROUP,
                    self._inp,
                    result_type=GroupProgress,
                    start_to_close_timeout=timedelta(seconds=self._inp.max_run_s + 300),
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RETRY,
                    summary=f"watch {len(self._inp.members)} services",
                )
            except ActivityError as err:  # only a non-retryable failure ends a run this way
                workflow.logger.error("watch group %s: %s", self._inp.group, err.cause)
                await workflow.sleep(timedelta(seconds=1))
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._inp)

    @workflow.signal
    def watch(self, spec: WatchSpec) -> None:
        """Watch ``spec.service`` (or watch it anew, for a higher generation)."""
        current = self._inp.members.get(spec.service.name)
        if current is not None and current.generation >= spec.generation:
            if current.monitor_id == spec.monitor_id:
                return  # registered already: nothing changes
        self._inp.members[spec.service.name] = spec
        self._bump()

    @workflow.signal
    def unwatch(self, service: str) -> None:
        """Stop watching ``service``."""
        if self._inp.members.pop(service, None) is not None:
            self._bump()

    @workflow.query
    def members(self) -> WatchGroupInput:
        """The members' latest specs and the version they make."""
        return self._inp

    def _bump(self) -> None:
        self._inp.version += 1
        workflow.upsert_memo({"version": self._inp.version})

    def _time_for_new_run(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > MAX_HISTORY
        )

"""ChaosExperiment: steady state, faults, drc at work, rollbacks that always run, a verdict.

Deterministic orchestration only; every read and every fault is an activity. The faults are a
saga: each injected fault's undo is pushed as its compensation, and the rollbacks run on
success, failure, abort and cancellation (from the Web UI or ``drc chaos halt``), every one
even if another fails, each recorded in the journal. A worker killed mid-experiment changes
nothing: the workflow resumes elsewhere and still rolls back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from drc.chaos import (
        ChaosResult,
        ChaosRunInput,
        FaultInput,
        FaultResult,
        JournalEntry,
        PrepareInput,
        SteadyInput,
        SteadyProbe,
        SteadyState,
        WatchInput,
        WatchOutcome,
    )
    from drc.names import (
        CHAOS_INJECT,
        CHAOS_JOURNAL,
        CHAOS_PREPARE,
        CHAOS_STEADY_STATE,
        CHAOS_UNDO,
        CHAOS_WATCH,
        CHAOS_WORKFLOW,
    )
    from runbooks.chaos import (
        Experiment,
        PlannedFault,
        Prepared,
        plan,
        recovery_probes,
        steady_probes,
    )
from workflows.telemetry import log_decision

QUICK = timedelta(seconds=30)
FAULT_RETRY = RetryPolicy(maximum_attempts=5, initial_interval=timedelta(milliseconds=200))
UNDO_RETRY = RetryPolicy(maximum_attempts=10, initial_interval=timedelta(milliseconds=200))
READ_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=200))

T = TypeVar("T")


def _cancelled(exc: BaseException) -> bool:
    """The workflow's cancellation, as it surfaces in an await or an activity's failure."""
    if isinstance(exc, asyncio.CancelledError | CancelledError):
        return True
    return isinstance(exc, ActivityError) and isinstance(exc.cause, CancelledError)


async def _read(name: str, inp: object, result_type: type[T], timeout_s: float) -> T:
    """A heartbeating read-only activity (steady state, watch), retried as reads are."""
    found: T = await workflow.execute_activity(
        name,
        inp,
        result_type=result_type,
        start_to_close_timeout=timedelta(seconds=timeout_s),
        heartbeat_timeout=timedelta(seconds=10),
        retry_policy=READ_RETRY,
    )
    return found


class Aborted(Exception):
    """The experiment stops here; ``reason`` says why (rollbacks still run)."""


@workflow.defn(name=CHAOS_WORKFLOW)
class ChaosExperimentWorkflow:
    """One run of one experiment; its journal is its ``journal`` query."""

    def __init__(self) -> None:
        self._journal: list[JournalEntry] = []
        self._undos: list[FaultInput] = []
        self._probes: list[SteadyProbe] = []
        self._experiment = ""

    @workflow.query
    def journal(self) -> list[JournalEntry]:
        """Every step so far: status, start, end, detail."""
        return self._journal

    @workflow.run
    async def run(self, inp: ChaosRunInput) -> ChaosResult:
        """Check, inject, watch, roll back, check again; the result carries the verdict."""
        self._experiment = inp.experiment
        seed = inp.seed if inp.seed is not None else workflow.random().randint(0, 2**31 - 1)
        workflow.upsert_memo({"experiment": inp.experiment, "seed": seed})
        result = ChaosResult(inp.experiment, "aborted", "", seed)
        try:
            prepared = await self._prepare(inp)
            planned = self._plan(prepared, seed, result)
            self._probes = steady_probes(prepared.experiment, prepared.catalog)
            before = await self._steady("steady-state-before", SteadyInput(self._probes))
            if not before.ok:
                raise Aborted(f"the steady state does not hold before: {before.failing()}")
            await self._method(prepared.experiment, planned, prepared, result)
        except Aborted as exc:
            result.verdict, result.reason = "aborted", str(exc)
        except BaseException as exc:  # cancelled (Web UI, drc chaos halt), or a bug: roll back
            result.verdict = "aborted"
            result.reason = "cancelled by an operator" if _cancelled(exc) else f"error: {exc}"
            await self._roll_back()
            await self._write(result)
            raise
        await self._roll_back()
        if result.verdict != "aborted" or self._journal_has("inject"):
            await self._settle(inp, result)
        await self._write(result)
        return result

    # --- steps ---------------------------------------------------------------------------------

    async def _prepare(self, inp: ChaosRunInput) -> Prepared:
        start = workflow.now().timestamp()
        try:
            prepared: Prepared = await workflow.execute_activity(
                CHAOS_PREPARE,
                PrepareInput(inp.experiment, workflow.info().workflow_id),
                result_type=Prepared,
                start_to_close_timeout=QUICK,
                retry_policy=READ_RETRY,
            )
        except ActivityError as exc:
            why = exc.cause.message if isinstance(exc.cause, ApplicationError) else str(exc)
            self._note("validate", "failed", start, why)
            raise Aborted(f"refused, nothing touched: {why}") from None
        self._note("validate", "succeeded", start, f"{prepared.experiment.title}: valid")
        if prepared.others_running:
            running = ", ".join(prepared.others_running)
            raise Aborted(f"another experiment runs ({running}): one at a time per deployment")
        return prepared

    def _plan(self, prepared: Prepared, seed: int, result: ChaosResult) -> list[PlannedFault]:
        start = workflow.now().timestamp()
        planned, refusal = plan(prepared, seed)
        result.targets = [t.replica for p in planned for t in p.targets]
        if refusal is not None:
            self._note("blast-radius", "failed", start, refusal)
            raise Aborted(refusal)
        drawn = "; ".join(
            f"{p.fault.name}: {', '.join(t.replica for t in p.targets)}" for p in planned
        )
        self._note("blast-radius", "succeeded", start, f"seed {seed}: {drawn}")
        return planned

    async def _method(
        self,
        experiment: Experiment,
        planned: list[PlannedFault],
        prepared: Prepared,
        result: ChaosResult,
    ) -> None:
        supervisor = str(prepared.catalog.process_control.supervisor_url)
        first: float | None = None
        for step in planned:
            fault = step.fault
            call = FaultInput(
                fault.fault,
                step.targets,
                supervisor,
                workflow.info().workflow_id,
                latency_ms=fault.latency_ms,
                error_share=fault.error_share,
            )
            self._undos.append(call)  # pushed first: an inject lost mid-way is undone too
            done = await self._fault(CHAOS_INJECT, f"inject {fault.name}", call, FAULT_RETRY)
            if done is None:
                raise Aborted(f"fault {fault.name} could not be injected")
            first = first if first is not None else done.at
        assert first is not None
        await self._observe(experiment, planned, prepared, result, first)

    async def _observe(
        self,
        experiment: Experiment,
        planned: list[PlannedFault],
        prepared: Prepared,
        result: ChaosResult,
        since: float,
    ) -> None:
        objective = experiment.recovery_objective
        hold_s = max(p.fault.duration_s for p in planned)
        recovery = recovery_probes(experiment, prepared.catalog)
        watch = WatchInput(
            replicas=[t.replica for p in planned for t in p.targets],
            services=sorted({t.service for p in planned for t in p.targets}),
            since=since,
            until_s=hold_s + max(3 * objective.recovered_within_s, 30.0),
            recovery=recovery,
            detect_only=objective.recovered_by == "rollback",
        )
        seen = await self._watch("watch", watch)
        if objective.recovered_by == "rollback" and seen.breach is None:
            await self._hold_until(since + hold_s)
            rolled = await self._roll_back()
            watch.recover_after, watch.detect_only = rolled, False
            later = await self._watch("watch-after-rollback", watch)
            seen.recovered_at, seen.breach, seen.last = later.recovered_at, later.breach, later.last
            recovered_from = rolled
        else:
            recovered_from = since
        if seen.breach is not None:
            raise Aborted(f"safeguard: {seen.breach}")
        await self._hold_until(since + hold_s)
        self._judge(experiment, seen, since, recovered_from, result)

    def _judge(
        self,
        experiment: Experiment,
        seen: WatchOutcome,
        since: float,
        recovered_from: float,
        result: ChaosResult,
    ) -> None:
        objective = experiment.recovery_objective
        if seen.detected_at is not None:
            result.time_to_detect_s = round(seen.detected_at - since, 3)
        if seen.recovered_at is not None:
            result.time_to_recover_s = round(seen.recovered_at - recovered_from, 3)
        ttd, ttr = result.time_to_detect_s, result.time_to_recover_s
        if ttd is not None and ttr is not None:
            result.objective_met = (
                ttd <= objective.detected_within_s and ttr <= objective.recovered_within_s
            )
        if ttd is None:
            result.verdict, result.reason = "failed", "drc never detected the fault"
        elif ttr is None:
            result.verdict = "failed"
            result.reason = f"not recovered within the watch ({seen.last or 'no detail'})"
        elif ttd > objective.detected_within_s:
            result.verdict = "failed"
            result.reason = (
                f"detected after {ttd:.2f} s, objective {objective.detected_within_s:g} s"
            )
        elif ttr > objective.recovered_within_s:
            result.verdict = "failed"
            result.reason = (
                f"recovered after {ttr:.2f} s, objective {objective.recovered_within_s:g} s"
            )
        else:
            result.verdict = "passed"
            result.reason = (
                f"detected in {ttd:.2f} s (objective {objective.detected_within_s:g} s), "
                f"recovered in {ttr:.2f} s (objective {objective.recovered_within_s:g} s)"
            )

    async def _settle(self, inp: ChaosRunInput, result: ChaosResult) -> None:
        """The steady state must come back after the rollbacks; a run leaving it broken fails."""
        after = await self._steady(
            "steady-state-after", SteadyInput(self._probes, within_s=inp.settle_s)
        )
        if not after.ok and result.verdict == "passed":
            result.verdict = "failed"
            result.reason = f"the steady state did not return: {after.failing()}"

    # --- activities ----------------------------------------------------------------------------

    async def _steady(self, step: str, inp: SteadyInput) -> SteadyState:
        start = workflow.now().timestamp()
        state = await _read(CHAOS_STEADY_STATE, inp, SteadyState, inp.within_s + 30)
        self._note(step, "succeeded" if state.ok else "failed", start, state.failing())
        return state

    async def _watch(self, step: str, inp: WatchInput) -> WatchOutcome:
        start = workflow.now().timestamp()
        seen = await _read(CHAOS_WATCH, inp, WatchOutcome, inp.until_s + 60)
        detail = seen.breach or (
            f"detected: {seen.detected_by}" if seen.detected_at else "no detection"
        )
        if seen.recovered_at is not None:
            detail += "; recovered"
        self._note(step, "failed" if seen.breach else "succeeded", start, detail)
        return seen

    async def _fault(
        self, name: str, step: str, call: FaultInput, retry: RetryPolicy
    ) -> FaultResult | None:
        start = workflow.now().timestamp()
        try:
            done: FaultResult = await workflow.execute_activity(
                name,
                call,
                result_type=FaultResult,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=20),
                retry_policy=retry,
            )
        except ActivityError as exc:
            why = exc.cause.message if isinstance(exc.cause, ApplicationError) else str(exc)
            self._note(step, "failed", start, why)
            return None
        self._note(step, "succeeded", start, done.detail)
        return done

    async def _roll_back(self) -> float:
        """Undo every injected fault, newest first, each even if another failed; once."""
        while self._undos:
            call = self._undos.pop()
            await self._fault(CHAOS_UNDO, f"rollback {call.kind}", call, UNDO_RETRY)
        return workflow.now().timestamp()

    async def _hold_until(self, at: float) -> None:
        wait = at - workflow.now().timestamp()
        if wait > 0:
            await workflow.sleep(wait)

    async def _write(self, result: ChaosResult) -> None:
        result.journal = list(self._journal)
        try:
            written: ChaosResult = await workflow.execute_activity(
                CHAOS_JOURNAL,
                result,
                result_type=ChaosResult,
                start_to_close_timeout=QUICK,
                retry_policy=READ_RETRY,
            )
        except ActivityError as exc:
            workflow.logger.warning("chaos journal not written: %s", exc)
            return
        result.journal_path, result.report_path = written.journal_path, written.report_path

    def _note(self, step: str, status: str, start: float, detail: str) -> None:
        entry = JournalEntry(step, status, start, workflow.now().timestamp(), detail)
        self._journal.append(entry)
        log_decision(
            "chaos %s %s: %s",
            step,
            status,
            detail,
            experiment=self._experiment,
            action=f"chaos-{step}",
            status=status,
            reason=detail,
        )

    def _journal_has(self, prefix: str) -> bool:
        return any(e.step.startswith(prefix) for e in self._journal)

"""The ChaosExperiment workflow on the time-skipping server, with same-named fake activities:
rollbacks run whatever happens, every one of them, and the journal says which failed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from drc.catalog_loader import load_catalog
from drc.chaos import (
    ChaosResult,
    ChaosRunInput,
    FaultInput,
    FaultKind,
    FaultResult,
    PrepareInput,
    SteadyInput,
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
)
from drc.settings import DEFAULT_CATALOG
from runbooks.chaos import Prepared, parse_experiment
from tests.support.temporal import new_worker, start_time_skipping
from workflows.chaos import ChaosExperimentWorkflow

CATALOG = load_catalog(DEFAULT_CATALOG)
TWO_FAULTS = {
    "title": "two faults",
    "steady-state-hypothesis": {"title": "h", "probes": [{"name": "p", "type": "no-incident"}]},
    "method": [
        {"name": "crash", "fault": "kill", "target": {"service": "order-gateway"}},
        {"name": "stall", "fault": "hang", "target": {"service": "market-data"}},
    ],
    "recovery-objective": {"detected-within-s": 2, "recovered-within-s": 5},
}


@dataclass
class Fakes:
    """The activities, recording what the workflow asked of them."""

    outcome: WatchOutcome
    steady: bool = True
    undone: list[str] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)

    def activities(self) -> list[Any]:
        @activity.defn(name=CHAOS_PREPARE)
        async def prepare(inp: PrepareInput) -> Prepared:
            healthy = {s.name: [r.name for r in s.replicas] for s in CATALOG.services}
            return Prepared(parse_experiment(TWO_FAULTS, CATALOG), CATALOG, {}, healthy)

        @activity.defn(name=CHAOS_STEADY_STATE)
        async def steady(inp: SteadyInput) -> SteadyState:
            return SteadyState(self.steady, [], 1000.0)

        @activity.defn(name=CHAOS_INJECT)
        async def inject(inp: FaultInput) -> FaultResult:
            self.injected.append(inp.kind.value)
            return FaultResult(inp.kind, f"injected {inp.kind}", 1000.0)

        @activity.defn(name=CHAOS_UNDO)
        async def undo(inp: FaultInput) -> FaultResult:
            self.undone.append(inp.kind.value)
            if inp.kind is FaultKind.HANG:
                raise ApplicationError("SIGCONT refused", non_retryable=True)
            return FaultResult(inp.kind, f"undid {inp.kind}", 1001.0)

        @activity.defn(name=CHAOS_WATCH)
        async def watch(inp: WatchInput) -> WatchOutcome:
            return self.outcome

        @activity.defn(name=CHAOS_JOURNAL)
        async def journal(result: ChaosResult) -> ChaosResult:
            return result

        return [prepare, steady, inject, undo, watch, journal]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_time_skipping()
    yield environment
    await environment.shutdown()


async def _run(env: WorkflowEnvironment, fakes: Fakes) -> ChaosResult:
    async with new_worker(env.client, [ChaosExperimentWorkflow], fakes.activities()) as worker:
        return await env.client.execute_workflow(
            ChaosExperimentWorkflow.run,
            ChaosRunInput("two-faults", seed=3, settle_s=0),
            id=f"chaos/{uuid.uuid4()}",
            task_queue=worker.task_queue,
        )


async def test_every_rollback_runs_even_when_one_fails_and_the_journal_says_which(
    env: WorkflowEnvironment,
) -> None:
    fakes = Fakes(WatchOutcome(detected_at=1000.5, detected_by="x", recovered_at=1002.0))
    result = await _run(env, fakes)
    assert fakes.injected == ["kill", "hang"]
    assert fakes.undone == ["hang", "kill"]  # newest first, the failed one not stopping the rest
    rollbacks = {e.step: e for e in result.journal if e.step.startswith("rollback")}
    assert rollbacks["rollback hang"].status == "failed"
    assert "SIGCONT refused" in rollbacks["rollback hang"].detail
    assert rollbacks["rollback kill"].status == "succeeded"
    assert result.verdict == "passed" and result.time_to_detect_s == 0.5


async def test_a_safeguard_breach_aborts_and_still_rolls_back(env: WorkflowEnvironment) -> None:
    fakes = Fakes(WatchOutcome(breach="risk-engine failed too (re-a): beyond the blast radius"))
    result = await _run(env, fakes)
    assert result.verdict == "aborted"
    assert result.reason == "safeguard: risk-engine failed too (re-a): beyond the blast radius"
    assert fakes.undone == ["hang", "kill"]


async def test_no_steady_state_no_injection(env: WorkflowEnvironment) -> None:
    fakes = Fakes(WatchOutcome(), steady=False)
    result = await _run(env, fakes)
    assert result.verdict == "aborted" and result.reason.startswith("the steady state does not")
    assert fakes.injected == [] and fakes.undone == []
    assert result.seed == 3 and result.targets

"""Chaos on Temporal: start a run, schedule runs, pause, resume, halt, and read the results.

A schedule is a Temporal Schedule (``chaos-schedule/<experiment>``, in the Web UI's
Schedules page) that starts ``ChaosExperiment``; overlap policy skip and a one-minute
catch-up window, so chaos is never backfilled after downtime. Results are the runs' journals
under ``DRC_HOME/chaos/``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowHandle,
)

from drc.chaos import ChaosResult, ChaosRunInput
from drc.errors import DrcError
from drc.names import CHAOS_PREFIX, CHAOS_SCHEDULE_PREFIX, CHAOS_WORKFLOW

CATCH_UP = timedelta(minutes=1)
"""A run missed while Temporal or the worker was down is started only within this window."""
INCIDENT_NOTE = "paused by drc: incident "
"""Prefix of the note drc leaves on a schedule it paused for an open incident."""

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> timedelta:
    """``90``, ``30s``, ``10m``, ``1h``, ``1d`` as a duration; ``DrcError`` names a bad one."""
    match = _DURATION.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise DrcError(f"duration {text!r} is not a positive number with ms, s, m, h or d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


def schedule_id(experiment: str) -> str:
    """The Temporal Schedule id of an experiment's schedule."""
    return f"{CHAOS_SCHEDULE_PREFIX}{experiment}"


def run_id(experiment: str, now: float | None = None) -> str:
    """A workflow id for one run started by hand: ``chaos/<experiment>/<UTC time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{CHAOS_PREFIX}{experiment}/{stamp}"


async def start_run(
    client: Client, experiment: str, task_queue: str, seed: int | None = None
) -> WorkflowHandle[Any, ChaosResult]:
    """Start one run now; the workflow refuses to inject while another experiment runs."""
    return await client.start_workflow(
        CHAOS_WORKFLOW,
        ChaosRunInput(experiment, seed=seed),
        id=run_id(experiment),
        task_queue=task_queue,
        result_type=ChaosResult,
        static_summary=f"chaos experiment {experiment}",
    )


def schedule_spec(every: str | None, jitter: str | None, cron: str | None) -> ScheduleSpec:
    """``--every`` (with ``--jitter``) or ``--cron`` as a spec; ``DrcError`` names a bad one."""
    if (every is None) == (cron is None):
        raise DrcError("give either --every or --cron")
    return ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=parse_duration(every))] if every is not None else [],
        cron_expressions=[cron] if cron is not None else [],
        jitter=parse_duration(jitter) if jitter is not None else None,
    )


async def create_schedule(
    client: Client, experiment: str, task_queue: str, spec: ScheduleSpec
) -> str:
    """Create the experiment's schedule; ``DrcError`` if it exists already."""
    action = ScheduleActionStartWorkflow(
        CHAOS_WORKFLOW,
        ChaosRunInput(experiment),
        id=f"{CHAOS_PREFIX}{experiment}/scheduled",
        task_queue=task_queue,
    )
    policy = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCH_UP)
    try:
        await client.create_schedule(
            schedule_id(experiment),
            Schedule(action=action, spec=spec, policy=policy, state=ScheduleState()),
        )
    except ScheduleAlreadyRunningError:
        raise DrcError(f"experiment {experiment} is already scheduled") from None
    return schedule_id(experiment)


@dataclass
class ScheduleView:
    """A chaos schedule as ``drc chaos list`` shows it."""

    experiment: str
    id: str
    paused: bool
    note: str
    next_runs: list[float]


async def chaos_schedules(client: Client) -> list[ScheduleView]:
    """Every chaos schedule, with its state and next runs (Unix seconds)."""
    found = []
    async for listed in await client.list_schedules():
        if listed.id.startswith(CHAOS_SCHEDULE_PREFIX):
            found.append(_view(listed))
    return sorted(found, key=lambda v: v.id)


def _view(listed: ScheduleListDescription) -> ScheduleView:
    state = listed.schedule.state if listed.schedule else None
    info = listed.info
    return ScheduleView(
        experiment=listed.id.removeprefix(CHAOS_SCHEDULE_PREFIX),
        id=listed.id,
        paused=bool(state and state.paused),
        note=(state.note or "") if state else "",
        next_runs=[t.timestamp() for t in (info.next_action_times if info else [])][:3],
    )


async def pause_schedule(client: Client, experiment: str, note: str) -> None:
    """Pause the experiment's schedule with ``note`` (idempotent)."""
    await client.get_schedule_handle(schedule_id(experiment)).pause(note=note)


async def resume_schedule(client: Client, experiment: str, note: str) -> None:
    """Resume the experiment's schedule (idempotent)."""
    await client.get_schedule_handle(schedule_id(experiment)).unpause(note=note)


async def halt(client: Client, who: str) -> tuple[list[str], list[str]]:
    """Cancel every running experiment (their rollbacks run) and pause every schedule."""
    cancelled = []
    query = f"WorkflowType = '{CHAOS_WORKFLOW}' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(query):
        await client.get_workflow_handle(wf.id, run_id=wf.run_id).cancel()
        cancelled.append(wf.id)
    paused = []
    for view in await chaos_schedules(client):
        await pause_schedule(client, view.experiment, f"halted by {who}")
        paused.append(view.id)
    return cancelled, paused


async def hold_for_incidents(client: Client, open_incidents: list[str]) -> list[str]:
    """Pause every running chaos schedule while an incident is open; resume those drc paused.

    A schedule an operator paused stays paused: drc resumes only schedules whose note is its
    own. Idempotent: the same incidents leave the schedules as they are. Returns what changed.
    """
    changed = []
    for view in await chaos_schedules(client):
        ours = view.note.startswith(INCIDENT_NOTE)
        if open_incidents and not view.paused:
            note = f"{INCIDENT_NOTE}{', '.join(open_incidents)} open"
            await pause_schedule(client, view.experiment, note)
            changed.append(f"paused {view.id} ({note})")
        elif not open_incidents and view.paused and ours:
            await resume_schedule(client, view.experiment, "resumed by drc: no incident open")
            changed.append(f"resumed {view.id}")
    return changed


@dataclass
class ExperimentScore:
    """An experiment's record over its journaled runs."""

    experiment: str
    runs: int
    passed: int
    objective_met: int
    last_verdict: str
    last_reason: str
    last_at: float

    @property
    def score(self) -> float:
        """Share of runs that passed (0..1)."""
        return self.passed / self.runs if self.runs else 0.0


def scores(home: Path) -> dict[str, ExperimentScore]:
    """Every experiment's runs from the journals under ``home/chaos``, newest last."""
    found: dict[str, ExperimentScore] = {}
    journals = sorted((home / "chaos").glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in journals:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written, or not a journal: the next listing reads it
        name, verdict = record.get("experiment", "?"), record.get("verdict", "?")
        entry = found.setdefault(name, ExperimentScore(name, 0, 0, 0, "", "", 0.0))
        entry.runs += 1
        entry.passed += verdict == "passed"
        entry.objective_met += record.get("objective_met") is True
        entry.last_verdict, entry.last_reason = verdict, record.get("reason", "")
        entry.last_at = path.stat().st_mtime
    return found

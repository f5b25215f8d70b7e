"""The experiments with their schedules and scores: ``drc chaos list`` and the recovery API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from activities.chaos_schedules import chaos_schedules, scores
from runbooks.chaos import experiment_names


@dataclass
class ChaosRow:
    """One experiment: its schedule (``none``, ``active`` or ``paused: why``) and its record."""

    experiment: str
    schedule: str
    paused: bool
    next_runs: list[float] = field(default_factory=list)
    runs: int = 0
    passed: int = 0
    objective_met: int = 0
    score: float | None = None
    last_verdict: str | None = None
    last_reason: str | None = None
    last_at: float | None = None


async def chaos_rows(client: Client, chaos_dir: Path, home: Path) -> list[ChaosRow]:
    """Every experiment on disk, scheduled or run, sorted by name."""
    views = {v.experiment: v for v in await chaos_schedules(client)}
    records = scores(home)
    rows: list[ChaosRow] = []
    for name in sorted(set(experiment_names(chaos_dir)) | set(views) | set(records)):
        view, record = views.get(name), records.get(name)
        row = ChaosRow(name, "none", False)
        if view is not None:
            row.paused, row.next_runs = view.paused, view.next_runs
            row.schedule = f"paused: {view.note or 'by an operator'}" if view.paused else "active"
        if record is not None:
            row.runs, row.passed = record.runs, record.passed
            row.objective_met = record.objective_met
            row.score = round(record.score, 3)
            row.last_verdict, row.last_reason = record.last_verdict, record.last_reason
            row.last_at = record.last_at
        rows.append(row)
    return rows

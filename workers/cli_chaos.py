"""``drc chaos``: run, schedule, list, pause, resume, unschedule and halt chaos experiments.

Every command that names an experiment validates it against the catalog first; a problem is
printed with its location and the command exits 2 having started nothing.
"""

from __future__ import annotations

import getpass
import time
from typing import Annotated, Any

import typer

from activities.chaos_schedules import (
    create_schedule,
    halt,
    pause_schedule,
    resume_schedule,
    schedule_id,
    schedule_spec,
    start_run,
)
from drc.catalog import Catalog
from drc.errors import ChaosError, DrcError
from drc.settings import Settings
from runbooks.chaos import Experiment, experiment_path, load_experiment
from workers.chaos_views import chaos_rows

# workers.cli adds these commands in its main(), after it is loaded: no import cycle.
from workers.cli import _load, _run
from workers.connect import connect

chaos_app = typer.Typer(no_args_is_help=True, help=__doc__)

ExperimentArg = Annotated[str, typer.Argument(help="An experiment in runbooks/chaos/ (by name).")]


def _checked(experiment: str) -> tuple[Settings, Catalog, Experiment]:
    settings = Settings()
    catalog = _load(settings)
    try:
        found = load_experiment(experiment_path(experiment, settings.chaos_dir), catalog)
    except ChaosError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    return settings, catalog, found


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


@chaos_app.command("run")
def run(
    experiment: ExperimentArg,
    seed: Annotated[int | None, typer.Option(help="Seed of the blast radius draw.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the verdict.")] = True,
) -> None:
    """Run an experiment now; exit 0 if it passed, 1 if it failed or was aborted."""
    settings, _, found = _checked(experiment)

    async def main() -> None:
        client = await connect(settings)
        handle = await start_run(client, experiment, settings.task_queue, seed)
        typer.echo(f"started {handle.id}: {found.title}")
        if not wait:
            return
        result = await handle.result()
        typer.echo(f"{result.verdict}: {result.reason}")
        typer.echo(f"journal: {result.journal_path}\nreport: {result.report_path}")
        if result.verdict != "passed":
            raise typer.Exit(1)

    _run(main())


@chaos_app.command("schedule")
def schedule(
    experiment: ExperimentArg,
    every: Annotated[str | None, typer.Option(help="Interval: 30m, 1h, 1d.")] = None,
    jitter: Annotated[str | None, typer.Option(help="Random delay up to this: 10m.")] = None,
    cron: Annotated[str | None, typer.Option(help='Cron expression: "0 * * * *".')] = None,
) -> None:
    """Schedule an experiment (a Temporal Schedule; overlap skip, no backfill)."""
    settings, _, _ = _checked(experiment)
    try:
        spec = schedule_spec(every, jitter, cron)
    except DrcError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def main() -> None:
        client = await connect(settings)
        made = await create_schedule(client, experiment, settings.task_queue, spec)
        typer.echo(f"scheduled {made}")

    _run(main())


@chaos_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Experiments, their schedules and next runs, last results and resilience score."""
    settings = Settings()

    async def main() -> None:
        client = await connect(settings)
        rows: list[dict[str, Any]] = [
            {
                "experiment": r.experiment,
                "schedule": r.schedule,
                "next_runs": [_when(t) for t in r.next_runs],
                "runs": r.runs,
                "passed": r.passed,
                "objective_met": r.objective_met,
                "score": r.score,
                "last": f"{r.last_verdict}: {r.last_reason}" if r.last_verdict else "",
            }
            for r in await chaos_rows(client, settings.chaos_dir, settings.home.resolve())
        ]
        if as_json:
            import json

            typer.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            score = "-" if row["score"] is None else f"{row['score']:.0%}"
            typer.echo(
                f"{row['experiment']:<20} schedule {row['schedule']}; next "
                f"{', '.join(row['next_runs']) or '-'}; runs {row['runs']}, passed "
                f"{row['passed']}, objective met {row['objective_met']}, score {score}"
            )
            if row["last"]:
                typer.echo(f"{'':<20} last: {row['last']}")

    _run(main())


@chaos_app.command("pause")
def pause(experiment: ExperimentArg) -> None:
    """Pause an experiment's schedule."""
    _schedule_change(experiment, pause=True)


@chaos_app.command("resume")
def resume(experiment: ExperimentArg) -> None:
    """Resume an experiment's schedule."""
    _schedule_change(experiment, pause=False)


@chaos_app.command("unschedule")
def unschedule(experiment: ExperimentArg) -> None:
    """Delete an experiment's schedule (running experiments go on)."""
    settings = Settings()

    async def main() -> None:
        client = await connect(settings)
        await client.get_schedule_handle(schedule_id(experiment)).delete()
        typer.echo(f"deleted {schedule_id(experiment)}")

    _run(main())


@chaos_app.command("halt")
def halt_(
    reason: Annotated[str, typer.Option(help="Why (kept on the paused schedules).")] = "",
) -> None:
    """Cancel every running experiment (rollbacks run) and pause every chaos schedule."""
    settings = Settings()

    async def main() -> None:
        client = await connect(settings)
        who = getpass.getuser() + (f": {reason}" if reason else "")
        cancelled, paused = await halt(client, who)
        typer.echo(f"cancelled: {', '.join(cancelled) or 'none'}")
        typer.echo(f"paused: {', '.join(paused) or 'none'}")

    _run(main())


def _schedule_change(experiment: str, pause: bool) -> None:
    settings = Settings()
    who = getpass.getuser()

    async def main() -> None:
        client = await connect(settings)
        if pause:
            await pause_schedule(client, experiment, f"paused by {who}")
        else:
            await resume_schedule(client, experiment, f"resumed by {who}")
        typer.echo(f"{'paused' if pause else 'resumed'} {schedule_id(experiment)}")

    _run(main())

"""A chaos run's report: the hypothesis, the faults, the journal as a timeline, the verdict.

Built from the run's result (its journal is the timeline, one row per step with its times)
and the experiment as written; rendered through the incident reports' Jinja2 environments
(reports/render.py), so the same escaping rules apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from drc.chaos import ChaosResult
from reports.render import render_chaos_html, render_chaos_markdown
from runbooks.chaos import Experiment


@dataclass(frozen=True)
class ChaosRow:
    """One journal step, with times as the report prints them."""

    at: str
    offset_s: str
    step: str
    status: str
    duration_s: str
    detail: str


@dataclass(frozen=True)
class ChaosView:
    """Every value the chaos templates print: they compute nothing."""

    title: str
    experiment: str
    description: str
    verdict: str
    reason: str
    seed: int
    targets: str
    hypothesis: str
    probes: list[str]
    faults: list[str]
    objective: str
    ttd: str
    ttr: str
    rows: list[ChaosRow]


def chaos_view(result: ChaosResult, experiment: Experiment | None) -> ChaosView:
    """The report's values for ``result`` (``experiment`` None: the file could not be read)."""
    start = result.journal[0].start if result.journal else 0.0
    rows = [
        ChaosRow(
            datetime.fromtimestamp(e.start, UTC).strftime("%H:%M:%S.%f")[:-3],
            f"+{e.start - start:.2f}",
            e.step,
            e.status,
            f"{e.duration_s:.2f}",
            e.detail,
        )
        for e in result.journal
    ]
    hypothesis = experiment.steady_state_hypothesis if experiment else None
    objective = experiment.recovery_objective if experiment else None
    return ChaosView(
        title=experiment.title if experiment else result.experiment,
        experiment=result.experiment,
        description=experiment.description if experiment else "",
        verdict=result.verdict,
        reason=result.reason,
        seed=result.seed,
        targets=", ".join(result.targets) or "none",
        hypothesis=hypothesis.title if hypothesis else "",
        probes=[f"{p.name} ({p.type})" for p in hypothesis.probes] if hypothesis else [],
        faults=[
            f"{f.name}: {f.fault} on {f.target.region or f.target.service} "
            f"({f.target.replica if f.target.service else 'every replica'}, {f.select})"
            + (f" for {f.duration_s:g} s" if f.duration_s else "")
            for f in (experiment.method if experiment else ())
        ],
        objective=(
            f"detected within {objective.detected_within_s:g} s, recovered within "
            f"{objective.recovered_within_s:g} s (by {objective.recovered_by})"
            if objective
            else "unknown"
        ),
        ttd=_seconds(result.time_to_detect_s),
        ttr=_seconds(result.time_to_recover_s),
        rows=rows,
    )


def render_chaos(result: ChaosResult, experiment: Experiment | None) -> tuple[str, str]:
    """The run's report as (Markdown, HTML)."""
    view = chaos_view(result, experiment)
    return render_chaos_markdown(view), render_chaos_html(view)


def _seconds(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f} s"

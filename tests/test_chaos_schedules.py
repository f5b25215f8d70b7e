"""Chaos schedule helpers that need no server: durations and the resilience score."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from activities.chaos_schedules import parse_duration, run_id, scores
from drc.errors import DrcError


def test_durations_read_as_the_readme_writes_them() -> None:
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("30s") == parse_duration("30") == timedelta(seconds=30)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    assert parse_duration("1d") == timedelta(days=1)
    for bad in ("soon", "-1h", "0", "1w", ""):
        with pytest.raises(DrcError, match="is not a positive number"):
            parse_duration(bad)


def test_run_ids_name_the_experiment_and_the_utc_time() -> None:
    assert run_id("primary-crash", now=0) == "chaos/primary-crash/19700101T000000Z"


def test_the_score_is_the_share_of_runs_passed_over_every_journal(tmp_path: Path) -> None:
    folder = tmp_path / "chaos"
    folder.mkdir()
    runs = [("passed", True), ("failed", False), ("passed", True), ("aborted", None)]
    for i, (verdict, met) in enumerate(runs):
        record = {"experiment": "x", "verdict": verdict, "reason": f"r{i}", "objective_met": met}
        (folder / f"run-{i}.json").write_text(json.dumps(record))
    (folder / "broken.json").write_text("{")  # being written: skipped
    [found] = scores(tmp_path).values()
    assert (found.runs, found.passed, found.objective_met) == (4, 2, 2)
    assert found.score == 0.5

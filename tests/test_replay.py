"""Replay the recorded histories of real runs against today's workflow code.

A change that would make a workflow already running in production take a different path
(a new activity, a reordered step, a timer added or removed) fails here: Temporal's Replayer
raises a non-determinism error. How to make such a change safely: ARCHITECTURE.md,
"Changing a workflow". The fixtures come from ``python -m tests.replay.record``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.sandbox import SANDBOX
from workers.workflows import WORKFLOWS

ROOT = Path(__file__).parent / "replay" / "histories"
HISTORIES = sorted(ROOT.glob("*/*.json"))
KINDS = ("monitor_", "restart_", "failover_", "failover-state_", "reprotect", "drain_")
SETS = ("solo-watch", "grouped-watch", "grouped-watch-inputs", "incidents", "fleet")
"""Sets of fixtures, each recorded by one drc version: monitors that watch alone (before
grouped watching); watched by a WatchGroup; past the patch that starts a new watch
generation only when the watch's inputs change (workflows/monitor.py, PATCH_WATCH_INPUTS);
keeping incidents, with their report runs (workflows/monitor_incidents.py,
PATCH_INCIDENTS); and reporting to the Fleet workflow, with conditions beyond up/down
(workflows/fleet_link.py, PATCH_FLEET)."""


REGION_SETS = ("regions-chaos",)
"""Sets recorded on the demo catalog's two regions (``record SET --regions``): a region lost,
evacuated and returned (EvacuateRegion and its EvacuateService children), chaos experiments
run to their end and cancelled (ChaosExperiment)."""


def _history(path: Path) -> WorkflowHistory:
    record = json.loads(path.read_text())
    return WorkflowHistory.from_json(record["workflow_id"], record["history"])


def test_the_fixtures_cover_every_kind_of_run_in_every_set() -> None:
    for name in SETS:
        names = [p.name for p in HISTORIES if p.parent.name == name]
        for kind in KINDS:
            assert any(n.startswith(kind) for n in names), f"no recorded {kind} history in {name}"
    for name in SETS[1:]:
        grouped = [p.name for p in HISTORIES if p.parent.name == name]
        assert any(n.startswith("watch-group_") for n in grouped), f"no WatchGroup in {name}"
    for name in SETS[3:]:
        reports = [p.name for p in HISTORIES if p.parent.name == name]
        assert any(n.startswith("report_") for n in reports), f"no IncidentReport in {name}"
    fleet = [p.name for p in HISTORIES if p.parent.name == "fleet"]
    assert any(n.startswith("fleet-") for n in fleet), "no Fleet history in fleet"
    for name in REGION_SETS:
        found = [p.name for p in HISTORIES if p.parent.name == name]
        for kind in ("evacuate-region_ldn-", "evacuate-region_ldn_", "chaos_", "monitor_"):
            assert any(n.startswith(kind) for n in found), f"no {kind} history in {name}"


@pytest.mark.parametrize(
    "path", HISTORIES, ids=[f"{p.parent.name}/{p.stem.rsplit('-', 5)[0]}" for p in HISTORIES]
)
async def test_a_recorded_history_replays_on_todays_code(path: Path) -> None:
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
        workflow_runner=SANDBOX,
    )
    result = await replayer.replay_workflow(_history(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"

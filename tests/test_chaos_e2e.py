"""Chaos experiments end to end against the demo catalog on free ports: real Temporal,
supervisord, HAProxy, Redis, iptables and the drc worker; each run measured and rolled back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from activities.chaos_schedules import schedule_id, start_run
from drc.chaos import ChaosResult, JournalEntry
from drc.names import CHAOS_WORKFLOW
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, all_healthy, healthy_drc, run_drc, two_region_catalog
from workflows.chaos import ChaosExperimentWorkflow

pytestmark = pytest.mark.integration

SIX = (
    "primary-crash",
    "replica-hang",
    "latency",
    "netcut-primary",
    "replication-break",
    "region-loss",
)


async def _run(drc: DrcStack, name: str, seed: int = 7) -> ChaosResult:
    handle = await start_run(drc.client, name, "drc", seed=seed)
    return await asyncio.wait_for(handle.result(), timeout=240)


def _steps(result: ChaosResult) -> list[str]:
    return [f"{e.step} {e.status}" for e in result.journal]


def _no_chaos_rules() -> None:
    rules = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout
    assert "drc-chaos" not in rules, rules


async def test_the_six_demo_experiments_pass_one_after_another(tmp_path: Path) -> None:
    async with healthy_drc(tmp_path, two_region_catalog(return_check_s=1.0)) as drc:
        for name in SIX:
            result = await _run(drc, name)
            assert result.verdict == "passed", (name, result.reason, _steps(result))
            assert result.time_to_detect_s is not None and result.time_to_recover_s is not None
            assert result.objective_met is True
            steps = _steps(result)
            assert steps[0] == "validate succeeded" and "steady-state-after succeeded" in steps
            assert any(s.startswith("rollback") and s.endswith("succeeded") for s in steps), steps
            journal = json.loads(Path(result.journal_path or "").read_text())
            assert journal["verdict"] == "passed" and journal["seed"] == 7
            report = Path(result.report_path or "").read_text()
            assert "**Verdict: passed**" in report and "time to recover" in report
        _no_chaos_rules()
        listed = run_drc(drc, "chaos", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {row["experiment"]: row for row in json.loads(listed.stdout)}
        assert all(rows[name]["runs"] == 1 and rows[name]["score"] == 1.0 for name in SIX), rows


async def test_a_crash_experiment_whose_standby_is_down_aborts_before_injecting(
    tmp_path: Path,
) -> None:
    async with healthy_drc(tmp_path, two_region_catalog()) as drc:
        drc.platform.marker("og-b").touch()  # the standby cannot come back
        drc.supervisor().signalProcess("og-b", "KILL")

        async def standby_down() -> None:
            status = (await drc.status())["order-gateway"]
            og_b = next(r for r in status.replicas if r.name == "og-b")
            assert og_b.state.value in ("failed", "crash_looping"), og_b

        await assert_eventually(standby_down, timeout=60)
        primary_pid = drc.pid("og-a")
        result = await _run(drc, "primary-crash")
        assert result.verdict == "aborted", result
        assert "order-gateway has no healthy replica outside the blast radius" in result.reason
        assert not any(e.step.startswith("inject") for e in result.journal), _steps(result)
        assert drc.pid("og-a") == primary_pid  # untouched


async def test_halting_a_hang_experiment_continues_the_stopped_process(tmp_path: Path) -> None:
    async with healthy_drc(tmp_path, two_region_catalog()) as drc:
        handle = await start_run(drc.client, "replica-hang", "drc", seed=7)

        async def injected() -> JournalEntry:
            journal = await handle.query(ChaosExperimentWorkflow.journal)
            found = [e for e in journal if e.step.startswith("inject")]
            assert found and found[0].status == "succeeded", journal
            return found[0]

        entry = await assert_eventually(injected, timeout=60, interval=0.02)
        pid = int(entry.detail.split("pid ")[1].rstrip(")"))
        beside = await _run(drc, "primary-crash")  # one experiment at a time per deployment
        assert beside.verdict == "aborted" and "another experiment runs" in beside.reason
        assert handle.id in beside.reason
        halted = run_drc(drc, "chaos", "halt", "--reason", "test")
        assert halted.returncode == 0 and handle.id in halted.stdout, halted.stdout
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED
        # Continued by the rollback, or already killed and restarted by drc: never left stopped.
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists():
            assert stat.read_text().split()[2] != "T", stat.read_text()
        journal_file = drc.home / "chaos" / f"{handle.id.replace('/', '_')}.json"
        journal = json.loads(journal_file.read_text())
        rollback = [e for e in journal["journal"] if e["step"] == "rollback hang"]
        assert rollback and rollback[0]["status"] == "succeeded", journal["journal"]
        assert journal["verdict"] == "aborted" and journal["reason"] == "cancelled by an operator"
        await assert_eventually(lambda: all_healthy(drc), timeout=60)


async def test_a_worker_killed_mid_experiment_still_rolls_the_fault_back(tmp_path: Path) -> None:
    async with healthy_drc(tmp_path, two_region_catalog()) as drc:
        handle = await start_run(drc.client, "netcut-primary", "drc", seed=7)

        async def injected() -> None:
            journal = await handle.query(ChaosExperimentWorkflow.journal)
            assert any(e.step.startswith("inject") for e in journal), journal

        await assert_eventually(injected, timeout=60, interval=0.05)
        assert drc.worker is not None
        os.kill(drc.worker.proc.pid, signal.SIGKILL)
        drc.worker.proc.wait()
        drc.start_worker()
        result: ChaosResult = await asyncio.wait_for(handle.result(), timeout=240)
        steps = _steps(result)
        assert "rollback netcut succeeded" in steps, steps
        assert steps.count("inject cut-the-primary succeeded") == 1, steps
        _no_chaos_rules()
        await assert_eventually(lambda: all_healthy(drc), timeout=90)


async def test_a_cli_schedule_runs_and_pauses_while_an_incident_is_open(tmp_path: Path) -> None:
    async with healthy_drc(tmp_path, two_region_catalog()) as drc:
        made = run_drc(drc, "chaos", "schedule", "primary-crash", "--every", "15s")
        assert made.returncode == 0, made.stderr
        # The Web UI's Schedules page lists what the server lists.
        listed = [s.id async for s in await drc.client.list_schedules()]
        assert schedule_id("primary-crash") in listed

        async def ran() -> None:
            query = f"WorkflowType = '{CHAOS_WORKFLOW}' AND ExecutionStatus = 'Completed'"
            done = [wf.id async for wf in drc.client.list_workflows(query)]
            assert any(i.startswith("chaos/primary-crash/scheduled") for i in done), done

        await assert_eventually(ran, timeout=90, interval=0.5)
        await assert_eventually(lambda: all_healthy(drc), timeout=60)

        handle = drc.client.get_schedule_handle(schedule_id("primary-crash"))
        drc.platform.marker("md-a").touch()  # md-a stays down: its incident stays open
        drc.supervisor().signalProcess("md-a", "KILL")

        async def paused() -> str:
            state = (await handle.describe()).schedule.state
            assert state.paused and state.note.startswith("paused by drc: incident"), state
            return state.note

        note = await assert_eventually(paused, timeout=60, interval=0.2)
        assert "market-data" in note
        drc.platform.marker("md-a").unlink()
        restarted = run_drc(drc, "restart", "market-data", "md-a", "--reason", "test")
        assert restarted.returncode == 0, restarted.stderr

        async def resumed() -> None:
            state = (await handle.describe()).schedule.state
            assert not state.paused, state

        await assert_eventually(resumed, timeout=90, interval=0.2)
        await handle.delete()

        # The other schedule and run options, as the README lists them.
        cron = run_drc(
            drc, "chaos", "schedule", "latency", "--cron", "0 3 * * *", "--jitter", "10m"
        )
        assert cron.returncode == 0, cron.stderr
        other = drc.client.get_schedule_handle(schedule_id("latency"))
        spec = (await other.describe()).schedule.spec
        assert spec.jitter is not None and spec.jitter.total_seconds() == 600, spec
        assert run_drc(drc, "chaos", "pause", "latency").returncode == 0
        state = (await other.describe()).schedule.state
        assert state.paused and state.note.startswith("paused by "), state
        assert run_drc(drc, "chaos", "resume", "latency").returncode == 0
        assert not (await other.describe()).schedule.state.paused
        twice = run_drc(drc, "chaos", "schedule", "latency", "--every", "1h")
        assert twice.returncode == 1 and "already scheduled" in twice.stderr, twice.stderr
        assert run_drc(drc, "chaos", "unschedule", "latency").returncode == 0
        assert schedule_id("latency") not in [s.id async for s in await drc.client.list_schedules()]
        bad = run_drc(drc, "chaos", "schedule", "latency", "--every", "soon")
        assert bad.returncode == 2 and "duration 'soon'" in bad.stderr, bad.stderr
        neither = run_drc(drc, "chaos", "schedule", "latency")
        assert neither.returncode == 2 and "either --every or --cron" in neither.stderr

        started = run_drc(drc, "chaos", "run", "latency", "--seed", "5", "--no-wait")
        assert started.returncode == 0 and started.stdout.startswith("started chaos/latency/")
        run_id = started.stdout.split()[1].rstrip(":")
        result = await drc.client.get_workflow_handle(run_id, result_type=ChaosResult).result()
        assert result.seed == 5 and result.verdict == "passed", result.reason


def test_a_hostile_experiment_is_refused_with_located_errors_and_starts_nothing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "chaos"
    folder.mkdir()
    (folder / "hostile.yaml").write_text(
        "title: hostile\n"
        "steady-state-hypothesis: {title: t, probes: [{name: p, type: no-incident}]}\n"
        "method:\n"
        "  - {name: f, fault: kill, target: {service: order-gateway, replica: 'og-a; rm -rf /'}}\n"
        "  - {name: g, fault: netcut, target: {service: nowhere}}\n"
        "  - {name: h, fault: format-disk, target: {service: order-gateway}}\n"
        "recovery-objective: {detected-within-s: 1, recovered-within-s: 1}\n"
    )
    env = {**os.environ, "DRC_CHAOS_DIR": str(folder), "DRC_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    run = subprocess.run(
        [".venv/bin/python", "-m", "workers.cli", "chaos", "run", "hostile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "method[0].target.replica" in run.stderr
    assert "method[1].target.service: unknown service 'nowhere'" in run.stderr
    assert "method[2].fault" in run.stderr
    assert "started" not in run.stdout  # refused before any connection (Temporal unreachable)
    named = subprocess.run(
        [".venv/bin/python", "-m", "workers.cli", "chaos", "run", "../../etc/passwd"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert named.returncode == 2 and "is not a valid name" in named.stderr, named.stderr

"""Every operator command the README and drc's refusals name, through the real CLIs (drc and
Temporal's) against the real stack: dry runs, reprotect, reload (change and removal), resume
lifting a freeze, status JSON, the request_failover signal and the plan queries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from temporalio.service import RPCError

from drc.model import ServiceState
from drc.names import monitor_id, runbook_id
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, demo_like_catalog, running_drc

pytestmark = pytest.mark.integration

GATEWAY = "order-gateway"


def _run(
    stack: DrcStack, binary: str, *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / binary), *args],
        env={**stack.env(), "DRC_OPERATOR": "fay"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ok:
        assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def _temporal(stack: DrcStack, *args: str) -> str:
    return _run(stack, "temporal", *args, "--address", stack.address).stdout


async def _all_healthy(stack: DrcStack) -> None:
    status = await stack.status()
    assert {s.state for s in status.values()} == {ServiceState.HEALTHY}, status
    assert not any(s.repairs_running for s in status.values()), status


async def _decision(stack: DrcStack, service: str, action: str) -> str:
    decisions = (await stack.status())[service].decisions
    found = [d for d in decisions if d.action == action]
    assert found, [(d.action, d.reason) for d in decisions]
    return found[-1].reason


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    catalog = demo_like_catalog(thresholds={"flap_max_transitions": 2, "flap_freeze_s": 600})
    async with running_drc(tmp_path, catalog) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


async def test_dry_runs_change_nothing_and_a_signal_fails_over(drc: DrcStack) -> None:
    plan = _run(drc, "drc", "restart", GATEWAY, "og-b", "--dry-run").stdout
    assert plan.startswith("dry run: restart order-gateway -> og-b (nothing was changed)"), plan
    assert "ok   og-b under process control: RUNNING" in plan
    assert f"would run as restart/{GATEWAY}/og-b" in plan
    plan = _run(drc, "drc", "failover", GATEWAY, "--dry-run").stdout
    assert "FAIL primary: og-a is healthy" in plan and "a failover now is a switchover" in plan
    assert "1. hold: guard replica.healthy og-b; traffic.set og-b drain" in plan
    assert (await drc.status())[GATEWAY].repairs_running == []

    queried = _temporal(
        drc,
        "workflow",
        "query",
        "--workflow-id",
        monitor_id(GATEWAY),
        "--name",
        "plan_failover",
        "--input",
        "{}",
    )
    assert '"target": "og-b"' in queried.replace("\n", "").replace("  ", " ") or "og-b" in queried
    _temporal(
        drc,
        "workflow",
        "signal",
        "--workflow-id",
        monitor_id(GATEWAY),
        "--name",
        "request_failover",
        "--input",
        '{"reason": "ldn maintenance", "operator": "gil"}',
    )

    async def switched() -> None:
        status = (await drc.status())[GATEWAY]
        assert status.primary == "og-b" and not status.repairs_running, status

    await assert_eventually(switched, timeout=60)
    assert "gil asked: ldn maintenance" in await _decision(drc, GATEWAY, "failover")


async def test_a_cancelled_reprotection_is_run_again_by_drc_reprotect(drc: DrcStack) -> None:
    refused = _run(drc, "drc", "reprotect", GATEWAY, ok=False)
    assert refused.returncode == 1
    assert "refused: order-gateway has no replica waiting to be re-protected (name one" in (
        refused.stderr
    )
    hold = drc.platform.marker("og-a.admin-hang")
    hold.parent.mkdir(parents=True, exist_ok=True)
    hold.touch()  # the re-protection will wait in og-a's demote
    drc.supervisor().signalProcess("og-a", "KILL")
    reprotect = runbook_id("reprotect", GATEWAY)

    async def demoting() -> None:
        try:
            described = await drc.client.get_workflow_handle(reprotect).describe()
        except RPCError as exc:  # not started yet
            raise AssertionError(exc.message) from exc
        names = [p.activity_type.name for p in described.raw_description.pending_activities]
        assert "action_replica_demote" in names, names

    await assert_eventually(demoting, timeout=60)
    _temporal(drc, "workflow", "cancel", "--workflow-id", reprotect)
    reason = await assert_eventually(lambda: _decision(drc, GATEWAY, "reprotect-cancelled"), 60)
    assert reason.endswith("og-a is not a standby: drc reprotect order-gateway runs it again")
    hold.unlink()
    done = _run(drc, "drc", "reprotect", GATEWAY, "--reason", "drill")
    assert done.stdout.strip() == reprotect
    await assert_eventually(lambda: _decision(drc, GATEWAY, "reprotect-done"), 60)
    assert "(fay asked)" in await _decision(drc, GATEWAY, "reprotect")
    await assert_eventually(lambda: _all_healthy(drc), timeout=60)
    assert (await drc.status())[GATEWAY].unprotected is None


async def test_resume_lifts_a_freeze_and_status_json_shows_it(drc: DrcStack) -> None:
    # flap_max_transitions 2: healthy at start, then failed, is two transitions: it flaps.
    drc.supervisor().signalProcess("re-a", "KILL")

    async def frozen() -> dict[str, object]:
        shown = json.loads(_run(drc, "drc", "status", "--json").stdout)
        risk = next(s for s in shown["services"] if s["name"] == "risk-engine")
        assert risk["frozen"] == ["re-a"], risk
        return risk

    risk = await assert_eventually(frozen, timeout=60)
    replica = risk["replicas"][0]  # type: ignore[index]
    fleet = json.loads(_run(drc, "drc", "status", "--json").stdout)["fleet"]
    assert fleet["mode"] == "normal" and fleet["services"] == len(drc.catalog.services), fleet
    assert fleet["system_health"] in ("healthy", "degraded", "critical")
    table = _run(drc, "drc", "status").stdout
    assert table.startswith("SYSTEM "), table[:200]
    assert "\nBRAKE normal: automatic repairs run freely" in table
    assert replica["state"] == "frozen" and replica["frozen_until"] is not None
    said = _run(drc, "drc", "resume", "risk-engine", "--reason", "found the cause").stdout
    assert said.strip() == "lifted the freeze of re-a"
    await assert_eventually(lambda: _all_healthy(drc), timeout=60)
    assert await _decision(drc, "risk-engine", "unfrozen") == "fay lifted the freeze of re-a"


async def test_reload_applies_a_changed_catalog_and_retires_a_removed_service(
    drc: DrcStack,
) -> None:
    data = yaml.safe_load(drc.catalog_path.read_text())
    broken = {**data, "services": [*data["services"], {"name": "x", "replicas": []}]}
    bad = drc.home / "bad.yaml"
    bad.write_text(yaml.safe_dump(broken))
    refused = _run(drc, "drc", "reload", "--catalog", str(bad), ok=False)
    assert refused.returncode == 2 and "services[" in refused.stderr, refused.stderr
    assert set(await drc.status()) == {s.name for s in drc.catalog.services}, "nothing applied"

    data["services"] = [s for s in data["services"] if s["name"] != "risk-engine"]
    for service in data["services"]:
        if service["name"] == "market-data":
            service["thresholds"]["flap_freeze_s"] = 42
        service["depends_on"] = [d for d in service.get("depends_on", []) if d != "risk-engine"]
    changed = drc.home / "changed.yaml"
    changed.write_text(yaml.safe_dump(data))
    said = _run(drc, "drc", "reload", "--catalog", str(changed)).stdout
    assert "retired (left the catalog): risk-engine" in said, said
    risk = drc.client.get_workflow_handle(monitor_id("risk-engine"))
    assert (await risk.result()).startswith("risk-engine removed from the catalog")
    reason = await assert_eventually(lambda: _decision(drc, "market-data", "reconfigured"))
    assert reason == "configuration of market-data changed: service"

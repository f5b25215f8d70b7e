"""The built-in runbooks, and the located messages a malformed runbook earns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demo.haproxy import backend_name
from drc.catalog_loader import parse_catalog
from drc.errors import RunbookError
from runbooks.actions import ACTIONS
from runbooks.runbook import (
    Runbook,
    check_params,
    context_values,
    load_builtin_runbooks,
    load_runbook,
    parse_runbook,
    validate_runbook,
)


def test_builtin_runbooks_load_and_validate() -> None:
    runbooks = load_builtin_runbooks()
    assert {"failover", "drain", "reprotect"} <= set(runbooks)
    for runbook in runbooks.values():
        assert validate_runbook(runbook) == [], runbook.name


def test_every_world_changing_builtin_step_has_a_compensation() -> None:
    for runbook in load_builtin_runbooks().values():
        for step in runbook.steps:
            if not ACTIONS[step.action].read_only:
                assert step.compensation is not None, f"{runbook.name}/{step.name}"


def test_failover_runs_fence_stop_promote_switch_verify_in_that_order() -> None:
    failover = load_builtin_runbooks()["failover"]
    assert [s.name for s in failover.steps] == [
        "hold",
        "fence",
        "stop-old",
        "promote",
        "switch",
        "verify",
    ]
    assert failover.steps[0].guard is not None
    assert failover.steps[0].guard.action == "replica.healthy"


def test_the_backend_placeholder_matches_the_haproxy_config() -> None:
    service = parse_catalog(
        {
            "services": [
                {"name": "og", "replicas": [{"name": "a", "region": "r", "url": "http://h:1"}]}
            ]
        }
    ).services[0]
    assert context_values(service, "x")["backend"] == backend_name("og")
    assert "frontend" not in context_values(service, "x")


def base(**step: Any) -> dict[str, Any]:
    first = {"name": "fence", "action": "traffic.set", "args": {"server": "{r}", "state": "maint"}}
    return {"name": "t", "params": ["r"], "steps": [{**first, **step}]}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            base(args={"server": "{r}", "sate": "maint"}),
            [
                "steps[0].args: missing required arg 'state' of action traffic.set",
                "steps[0].args.sate: unknown arg 'sate' of action traffic.set "
                "(known: backend, server, state)",
            ],
        ),
        (
            base(action="traffic.flip"),
            ["steps[0].action: unknown action 'traffic.flip' (known: command, frontend.verify, "],
        ),
        (
            base(
                compensation={"action": "traffic.set", "args": {"server": "{x}", "state": "ready"}}
            ),
            [
                "steps[0].compensation.args.server: unknown placeholder {x} "
                "(known: backend, frontend, r, service, supervisor_url)"
            ],
        ),
        (
            base(args={"server": "{r}", "state": "off"}),
            [
                "steps[0].args.state: traffic.set state must be one of "
                "ready, drain, maint, not 'off'"
            ],
        ),
        (
            base(guard={"action": "process.stop", "args": {"replica": "{r}"}}),
            ["steps[0].guard.action: process.stop changes the world; a guard may only look"],
        ),
        (
            base(guard={"action": "replica.healthy", "args": {}}),
            ["steps[0].guard.args: missing required arg 'replica' of action replica.healthy"],
        ),
        (
            {**base(), "steps": [base()["steps"][0], base()["steps"][0]]},
            ["steps[1].name: duplicate step name 'fence'", "steps[0].name: duplicate step name"],
        ),
        (
            base(action="command", args={"argv": "rm -rf /"}),
            ["steps[0].args.argv: command needs argv as a non-empty list of strings"],
        ),
        (
            base(action="replica.wait_healthy", args={"replica": "{r}", "timeout_s": "soon"}),
            ["steps[0].args.timeout_s: replica.wait_healthy needs a number for timeout_s"],
        ),
        (
            base(args={"server": "{r }", "state": "maint"}),
            ["steps[0].args.server: malformed placeholder {r }"],
        ),
        ({**base(), "params": ["service"]}, ["params[0]: param 'service' hides the context"]),
        (base(timeout_s=0), ["steps[0].timeout_s: Input should be greater than 0"]),
        (base(retyr={}), ["steps[0].retyr: Extra inputs are not permitted"]),
        ({**base(), "steps": []}, ["steps: Tuple should have at least 1 item"]),
    ],
)
def test_malformed_runbooks_are_refused_with_located_messages(
    data: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(RunbookError) as refused:
        parse_runbook(data, "t.yaml")
    found = [str(issue) for issue in refused.value.issues]
    for message in expected:
        assert any(f.startswith(message) for f in found), (message, found)
    assert str(refused.value).startswith("t.yaml: ")


def test_params_must_be_given_and_known() -> None:
    runbook = Runbook.model_validate(base())
    assert [str(i) for i in check_params(runbook, {"x": "1"})] == [
        "params.r: missing value for param 'r'",
        "params.x: unknown param 'x' (declared: r)",
    ]
    assert check_params(runbook, {"r": "og-a"}) == []


def test_load_runbook_refuses_duplicate_keys_and_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nname: b\nsteps: []\n", encoding="utf-8")
    with pytest.raises(RunbookError) as refused:
        load_runbook(path)
    assert "line 2, column 1: invalid YAML: duplicate key 'name'" in str(refused.value)

"""Runbooks as data: ordered steps, each an action with a guard, retries and a compensation.

A runbook is YAML parsed into the frozen models below; ``validate_runbook`` checks it against
the action registry (``runbooks.actions``) and reports every problem with its location, and
``render_args`` fills ``{placeholders}`` from the runbook's params and the context the engine
provides. Both are pure and deterministic, so ``RunbookWorkflow`` runs them itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError

from drc.catalog import NAME_PATTERN, Service, StrictModel
from drc.errors import CatalogIssue, RunbookError
from drc.names import backend_name

# The loader's duplicate-key-refusing SafeLoader and location formatter: one YAML dialect.
from drc.yamlio import YamlReadError, format_location, read_yaml
from runbooks.actions import ACTIONS, ActionSpec

RUNBOOK_DIR = Path(__file__).parent

ArgValue = str | int | float | bool | list[str]
ParamName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]

CONTEXT_VARS = ("service", "backend", "supervisor_url", "frontend")
"""Placeholders the engine always fills (``frontend`` only for a service that has one)."""

# ``{name}`` is a placeholder; ``{{`` and ``}}`` are literal braces.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class RetrySpec(StrictModel):
    """How often a step's action (and its guard and compensation) is tried."""

    max_attempts: int = Field(3, ge=1, description="Attempts in all, the first included.")
    initial_interval_ms: int = Field(200, ge=1)
    backoff: float = Field(2.0, ge=1.0)
    max_interval_ms: int = Field(5000, ge=1)


class ActionCall(StrictModel):
    """A registered action and its arguments (strings may hold ``{placeholders}``)."""

    action: str
    args: dict[str, ArgValue] = {}


class Step(StrictModel):
    """One step: check the guard, run the action, remember how to undo it."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    action: str
    args: dict[str, ArgValue] = {}
    timeout_s: float = Field(30, gt=0, description="Bound on one attempt of the action.")
    retry: RetrySpec = RetrySpec()
    guard: ActionCall | None = None
    compensation: ActionCall | None = None


class Runbook(StrictModel):
    """A named, parameterized sequence of steps, run as a saga by ``RunbookWorkflow``."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str = ""
    params: tuple[ParamName, ...] = ()
    steps: tuple[Step, ...] = Field(min_length=1)


def load_runbook(path: Path | str) -> Runbook:
    """Read, parse and validate the runbook at ``path``; raise ``RunbookError`` naming each issue.

    Both the shape (pydantic) and the registry checks (``validate_runbook``) must pass.
    """
    source = str(path)
    try:
        data = read_yaml(path)
    except YamlReadError as exc:
        raise _error(source, [exc.issue]) from None
    return parse_runbook(data, source)


def parse_runbook(data: Any, source: str = "<runbook>") -> Runbook:
    """Validate already-parsed YAML data into a ``Runbook``; raise ``RunbookError`` if unusable."""
    if not isinstance(data, dict):
        raise _error(source, [CatalogIssue("", "a runbook must be a YAML mapping")])
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as exc:
        issues = [CatalogIssue(format_location(e["loc"]), e["msg"]) for e in exc.errors()]
        raise _error(source, issues) from None
    issues = validate_runbook(runbook)
    if issues:
        raise _error(source, issues)
    return runbook


def load_builtin_runbooks() -> dict[str, Runbook]:
    """Every ``runbooks/*.yaml`` shipped with drc, by runbook name."""
    runbooks: dict[str, Runbook] = {}
    for path in sorted(RUNBOOK_DIR.glob("*.yaml")):
        runbook = load_runbook(path)
        if runbook.name in runbooks:
            raise _error(str(path), [CatalogIssue("name", f"duplicate runbook {runbook.name!r}")])
        runbooks[runbook.name] = runbook
    return runbooks


def validate_runbook(runbook: Runbook) -> list[CatalogIssue]:
    """Every problem pydantic cannot see: actions, arguments, placeholders, step names.

    Locations read like ``steps[2].compensation.args.state``. An empty list means the
    runbook can run, given values for its params.
    """
    issues: list[CatalogIssue] = []
    known_names = set(runbook.params) | set(CONTEXT_VARS)
    for i, param in enumerate(runbook.params):
        if param in CONTEXT_VARS:
            issues.append(
                CatalogIssue(f"params[{i}]", f"param {param!r} hides the context variable")
            )
    counts = Counter(step.name for step in runbook.steps)
    for i, step in enumerate(runbook.steps):
        at = f"steps[{i}]"
        if counts[step.name] > 1:
            issues.append(CatalogIssue(f"{at}.name", f"duplicate step name {step.name!r}"))
        calls = [(at, ActionCall(action=step.action, args=step.args))]
        if step.guard is not None:
            calls.append((f"{at}.guard", step.guard))
        if step.compensation is not None:
            calls.append((f"{at}.compensation", step.compensation))
        for where, call in calls:
            issues.extend(_call_issues(where, call, known_names))
        if step.guard is not None:
            spec = ACTIONS.get(step.guard.action)
            if spec is not None and not spec.read_only:
                issues.append(
                    CatalogIssue(
                        f"{at}.guard.action",
                        f"{spec.name} changes the world; a guard may only look "
                        f"(read-only actions: {', '.join(_read_only_names())})",
                    )
                )
    return issues


def check_params(runbook: Runbook, params: Mapping[str, str]) -> list[CatalogIssue]:
    """Params the runbook declares but the caller did not give, and ones it does not declare."""
    issues = [
        CatalogIssue(f"params.{name}", f"missing value for param {name!r}")
        for name in runbook.params
        if name not in params
    ]
    declared = ", ".join(runbook.params) or "none"
    issues.extend(
        CatalogIssue(f"params.{name}", f"unknown param {name!r} (declared: {declared})")
        for name in params
        if name not in runbook.params
    )
    return issues


def context_values(service: Service, supervisor_url: str) -> dict[str, str]:
    """The placeholders the engine fills for every runbook run against ``service``."""
    values = {
        "service": service.name,
        "backend": backend_name(service.name),
        "supervisor_url": supervisor_url,
    }
    if service.frontend is not None:
        values["frontend"] = service.frontend
    return values


def render_args(args: Mapping[str, ArgValue], values: Mapping[str, str]) -> dict[str, ArgValue]:
    """``args`` with every ``{name}`` in a string (or a list's strings) replaced from ``values``.

    Pure and deterministic. Non-string values pass through unchanged; ``{{``/``}}`` are
    literal braces. Raises ``RunbookError`` naming the arg and the placeholder it lacks.
    """
    rendered: dict[str, ArgValue] = {}
    for key, value in args.items():
        if isinstance(value, str):
            rendered[key] = _render(key, value, values)
        elif isinstance(value, list):
            rendered[key] = [_render(f"{key}[{i}]", item, values) for i, item in enumerate(value)]
        else:
            rendered[key] = value
    return rendered


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text``, in order (malformed ones included, as written)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) is not None]


def _render(where: str, text: str, values: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        if name not in values:
            known = ", ".join(sorted(values)) or "none"
            raise RunbookError(f"arg {where}: no value for placeholder {{{name}}} (known: {known})")
        return values[name]

    return _PLACEHOLDER.sub(fill, text)


def _call_issues(at: str, call: ActionCall, known_names: set[str]) -> list[CatalogIssue]:
    spec = ACTIONS.get(call.action)
    if spec is None:
        known = ", ".join(sorted(ACTIONS))
        return [CatalogIssue(f"{at}.action", f"unknown action {call.action!r} (known: {known})")]
    issues = [
        CatalogIssue(f"{at}.args", f"missing required arg {name!r} of action {spec.name}")
        for name in sorted(spec.required - call.args.keys())
    ]
    for name, value in call.args.items():
        where = f"{at}.args.{name}"
        if name not in spec.known:
            known = ", ".join(sorted(spec.known)) or "none"
            issues.append(
                CatalogIssue(where, f"unknown arg {name!r} of action {spec.name} (known: {known})")
            )
            continue
        issues.extend(_value_issues(where, spec, name, value, known_names))
    return issues


def _value_issues(
    where: str, spec: ActionSpec, name: str, value: ArgValue, known_names: set[str]
) -> list[CatalogIssue]:
    if name in spec.lists:
        if not isinstance(value, list) or not value:
            return [CatalogIssue(where, f"{spec.name} needs {name} as a non-empty list of strings")]
        texts = value
    elif isinstance(value, list):
        return [CatalogIssue(where, f"{spec.name} takes a single value for {name}, not a list")]
    elif name in spec.numbers and not _is_number(value):
        return [CatalogIssue(where, f"{spec.name} needs a number for {name}, not {value!r}")]
    else:
        texts = [value] if isinstance(value, str) else []
    issues = []
    for text in texts:
        for found in placeholders(text):
            if not _IDENTIFIER.match(found):
                issues.append(CatalogIssue(where, f"malformed placeholder {{{found}}}"))
            elif found not in known_names:
                known = ", ".join(sorted(known_names))
                issues.append(
                    CatalogIssue(where, f"unknown placeholder {{{found}}} (known: {known})")
                )
    choices = spec.choices.get(name)
    if choices and isinstance(value, str) and not placeholders(value) and value not in choices:
        allowed = ", ".join(choices)
        issues.append(
            CatalogIssue(where, f"{spec.name} {name} must be one of {allowed}, not {value!r}")
        )
    return issues


def _is_number(value: ArgValue) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str) and placeholders(value):
        return True  # checked when rendered, by the action
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _read_only_names() -> list[str]:
    return sorted(spec.name for spec in ACTIONS.values() if spec.read_only)


def _error(source: str, issues: list[CatalogIssue]) -> RunbookError:
    lines = "\n".join(f"  {issue}" for issue in issues)
    return RunbookError(f"{source}: {len(issues)} error(s)\n{lines}", issues)


def describe_call(action: str, args: Mapping[str, ArgValue]) -> str:
    """``traffic.set og-a maint``: the action and its arg values, as written."""
    words = [" ".join(v) if isinstance(v, list) else str(v) for v in args.values()]
    return " ".join([action, *words])


def describe_steps(
    runbook: Runbook, service: Service, supervisor_url: str, params: Mapping[str, str]
) -> list[str]:
    """One line per step as it would run with ``params``: guard, action, undo (pure).

    For a dry run: nothing is executed. A runbook that cannot be rendered says why instead.
    """
    problems = validate_runbook(runbook) + check_params(runbook, params)
    if problems:
        return [f"runbook {runbook.name} cannot run: " + "; ".join(map(str, problems))]
    values = {**context_values(service, supervisor_url), **params}
    lines = []
    try:
        for i, step in enumerate(runbook.steps, 1):
            line = f"{i}. {step.name}: "
            if step.guard is not None:
                guard = render_args(step.guard.args, values)
                line += f"guard {describe_call(step.guard.action, guard)}; "
            line += describe_call(step.action, render_args(step.args, values))
            if step.compensation is not None:
                undo = render_args(step.compensation.args, values)
                line += f" (undo: {describe_call(step.compensation.action, undo)})"
            lines.append(line)
    except RunbookError as exc:
        return [f"runbook {runbook.name} cannot run: {exc}"]
    return lines

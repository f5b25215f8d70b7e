"""Reports rendered from recorded histories, compared byte for byte with golden files.

Regenerate after a deliberate change with ``DRC_UPDATE_GOLDEN=1 .venv/bin/pytest
tests/test_report_golden.py`` and read the diff before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reports.build import build_report
from reports.render import render_html, render_markdown
from tests.reports_golden.cases import CASES

GOLDEN = Path(__file__).parent / "reports_golden"
UPDATE = os.environ.get("DRC_UPDATE_GOLDEN") == "1"


def _render(name: str, fmt: str) -> str:
    case = CASES[name]()
    report = build_report(case.incident, case.runs, case.changes)
    return render_markdown(report) if fmt == "md" else render_html(report)


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_report_matches_its_golden_file(name: str, fmt: str) -> None:
    text = _render(name, fmt)
    path = GOLDEN / f"{name}.{fmt}"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with DRC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs: if the change is meant, regenerate with DRC_UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_same_inputs_give_the_same_bytes(fmt: str) -> None:
    name = "compensated-failover-order-gateway"
    assert _render(name, fmt) == _render(name, fmt)

"""``drc validate`` through the real console script, as an operator runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drc.settings import DEFAULT_CATALOG

DRC = Path(sys.executable).parent / "drc"

BAD_CATALOG = """\
services:
  - name: risk-engine
    probe: {interval_ms: 50}
    replicas:
      - {name: re-a, region: ldn, url: 'http://127.0.0.1:18111', colour: red}
"""


def drc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DRC_")}
    return subprocess.run(
        [str(DRC), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
        check=False,
    )


@pytest.fixture
def bad_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CATALOG, encoding="utf-8")
    return path


def assert_reports_bad_catalog(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: 2 error(s)",
        "  services[0].replicas[0].colour: Extra inputs are not permitted",
        "  services[0].probe.interval_ms: Input should be greater than or equal to 100",
    ]


def test_validate_accepts_the_demo_catalog() -> None:
    result = drc("validate", str(DEFAULT_CATALOG))
    assert result.returncode == 0, result
    assert result.stdout == (
        f"{DEFAULT_CATALOG}: ok (5 services, 10 replicas)\n"
        "runbooks: ok (drain, failover, failover-state, reprotect, reprotect-state)\n"
    )


def test_validate_without_a_path_checks_the_default_catalog() -> None:
    result = drc("validate")
    assert result.returncode == 0, result
    assert "ok (5 services, 10 replicas)" in result.stdout


def test_validate_reports_every_located_problem_and_exits_2(bad_catalog: Path) -> None:
    assert_reports_bad_catalog(drc("validate", str(bad_catalog)), bad_catalog)


def test_validate_reads_drc_catalog_when_given_no_path(bad_catalog: Path) -> None:
    result = drc("validate", env={"DRC_CATALOG": str(bad_catalog)})
    assert_reports_bad_catalog(result, bad_catalog)


def test_validate_reports_invalid_yaml_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("services:\n  - name: a\n    name: b\n", encoding="utf-8")
    result = drc("validate", str(path))
    assert result.returncode == 2, result
    assert "line 3, column 5: invalid YAML: duplicate key 'name'" in result.stderr


def test_validate_reports_a_missing_file(tmp_path: Path) -> None:
    result = drc("validate", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2, result
    assert "cannot read: No such file or directory" in result.stderr


THREE_MISTAKES = """\
services:
  - name: market-data
    redundancy: active-active
    replicas:
      - {name: md-a, region: ldn, url: 'http://127.0.0.1:18101', colour: red}
      - {name: md-b, region: nyc, url: 'http://127.0.0.1:18102'}
  - name: risk-engine
    depends_on: [market-data, pricing]
    replicas:
      - {name: md-a, region: ldn, url: 'http://127.0.0.1:18111'}
"""


def test_validate_names_structural_and_semantic_errors_in_one_run(tmp_path: Path) -> None:
    # an unknown key, a duplicate replica, an unknown dependency: all three, each located
    path = tmp_path / "three.yaml"
    path.write_text(THREE_MISTAKES, encoding="utf-8")
    result = drc("validate", str(path))
    assert result.returncode == 2, result
    assert result.stdout == ""
    header, *lines = result.stderr.splitlines()
    assert header == f"{path}: 4 error(s)"
    assert lines == [
        "  services[0].replicas[0].colour: Extra inputs are not permitted",
        "  services[0].replicas[0].name: duplicate replica 'md-a'",
        "  services[1].replicas[0].name: duplicate replica 'md-a'",
        "  services[1].depends_on[1]: unknown service 'pricing'",
    ]
    assert all(re.match(r"  services\[\d+\][.\w\[\]]*: \S", line) for line in lines)

"""Options the README names that need no running stack: each exists and says what is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from drc.settings import Settings


def _drc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_worker_for_an_unknown_vantage_point_exits_2_naming_the_known_ones(
    tmp_path: Path,
) -> None:
    done = _drc("worker", "--region", "tokyo", env={"DRC_HOME": str(tmp_path), "PATH": ""})
    assert done.returncode == 2
    assert "'tokyo' is not a vantage point of the catalog (ldn, nyc)" in done.stderr


def test_webhooks_are_a_comma_separated_list_of_http_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRC_WEBHOOKS", "http://hooks.local/a, https://chat.example/b")
    assert Settings().webhooks == ["http://hooks.local/a", "https://chat.example/b"]
    monkeypatch.setenv("DRC_WEBHOOKS", "ftp://nope")
    with pytest.raises(ValidationError, match="DRC_WEBHOOKS: 'ftp://nope' is not an http"):
        Settings()


def test_incidents_failures_and_history_read_an_empty_store_with_their_periods(
    tmp_path: Path,
) -> None:
    env = {"DRC_HOME": str(tmp_path), "PATH": ""}
    incidents = _drc("incidents", "--hours", "1", "--json", env=env)
    assert incidents.returncode == 0 and json.loads(incidents.stdout) == []
    failures = json.loads(_drc("failures", "--hours", "2", "--json", env=env).stdout)
    assert failures == {
        "failures": [],
        "total_count": 0,
        "critical_count": 0,
        "time_period_hours": 2.0,
    }
    history = json.loads(_drc("history", "--days", "1", "--json", env=env).stdout)
    assert history["services"] == [] and history["incidents"] == 0
    assert (tmp_path / "drc.db").exists()  # the embedded store, created on first use

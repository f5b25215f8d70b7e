"""``drc up`` as an operator runs it: Temporal, the worker with its metrics, the recovery API
with a token generated and printed once, and one SIGINT stops it all, even when the shell
that started it in the background left SIGINT ignored."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from api.auth import TOKEN_FILE
from drc.credentials import SUPERVISOR_CREDENTIALS_FILE
from tests.support.net import assert_eventually, free_port
from tests.support.supervisor import running_platform, small_catalog

pytestmark = pytest.mark.integration


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `cmd &` in a script hands down


async def test_drc_up_serves_api_and_metrics_and_one_sigint_stops_it(tmp_path: Path) -> None:
    catalog = small_catalog(("market-data",))
    with running_platform(tmp_path / "platform", catalog) as platform:
        catalog_path = tmp_path / "catalog.yaml"
        catalog_path.write_text(yaml.safe_dump(catalog.model_dump(mode="json")))
        home, api_port, metrics_port = tmp_path / "home", free_port(), free_port()
        env = {
            **os.environ,
            "DRC_HOME": str(home),
            "DRC_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "DRC_API_PORT": str(api_port),
            "DRC_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
            "DRC_SUPERVISOR_CREDENTIALS": str(platform.home / SUPERVISOR_CREDENTIALS_FILE),
        }
        env.pop("DRC_API_TOKEN", None)
        out = (tmp_path / "up.out").open("w")
        argv = [sys.executable, "-m", "workers.cli", "up", "--catalog", str(catalog_path)]
        up = subprocess.Popen(
            [*argv, "--ui-port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_sigint,
        )
        try:
            async with httpx.AsyncClient(timeout=10) as http:

                async def serving() -> None:
                    try:
                        status = await http.get(f"http://127.0.0.1:{api_port}/recovery/status")
                    except httpx.TransportError as exc:
                        raise AssertionError(f"API not up yet: {exc!r}") from None
                    assert status.status_code == 200, status.text
                    assert status.json()["heartbeat_status"]["market-data"]["status"] == "ok"

                await assert_eventually(serving, timeout=120, interval=0.5)
                metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                assert "drc_probe_latency_seconds_count" in metrics
                assert "temporal_" in metrics
            token = home / TOKEN_FILE
            assert stat.S_IMODE(token.stat().st_mode) == 0o600
            secret = token.read_text().strip().partition(":")[2]
            printed = (tmp_path / "up.out").read_text()
            assert printed.count(secret) == 1, printed  # printed once, by drc up
            assert f"http://127.0.0.1:{api_port}/" in printed
        finally:
            up.send_signal(signal.SIGINT)
            try:
                code = await asyncio.to_thread(up.wait, 90)
            except subprocess.TimeoutExpired:
                up.kill()  # the assertion below says it did not stop
                code = up.wait()
            out.close()
        assert code == 0, (tmp_path / "up.out").read_text()[-3000:]
        assert "drc up: stopped" in (tmp_path / "up.out").read_text()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{api_port}/health", timeout=2)

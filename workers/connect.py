"""One way to reach Temporal, with the project's data converter (pydantic, on both sides)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from drc.settings import Settings


async def connect(settings: Settings) -> Client:
    """A client for drc's namespace; raises RuntimeError naming the address if none answers."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
        )
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {exc}"
        ) from exc

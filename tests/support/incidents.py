"""Reading what a running drc recorded: its incident store under ``DRC_HOME``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drc.incident import Incident
from drc.store.store import IncidentStore


def _read(home: Path, service: str) -> list[Incident]:
    with IncidentStore.open(None, home) as store:
        return [i for i in store.incidents() if i.service == service]


async def incidents_of(home: Path, service: str) -> list[Incident]:
    """Every incident (near misses included) of ``service``, newest first."""
    return await asyncio.to_thread(_read, home, service)


async def one_resolved_incident(home: Path, service: str) -> Incident:
    """The one incident of ``service``, once it is resolved (for ``assert_eventually``)."""
    found = await incidents_of(home, service)
    assert len(found) == 1, [(i.id, i.status) for i in found]
    assert found[0].status == "resolved", found[0]
    return found[0]

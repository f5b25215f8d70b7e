"""The ``record_incident`` activity: the monitor's incident snapshots into the store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from activities.chaos_schedules import hold_for_incidents
from drc.incident import IncidentUpdate
from drc.names import RECORD_INCIDENT
from drc.store.store import IncidentStore


class IncidentActivities:
    """Writes incident updates to the store, opened on first use.

    A store that is down at the worker's start delays the records (Temporal retries them),
    not the worker.
    """

    def __init__(
        self, open_store: Callable[[], IncidentStore], client: Client | None = None
    ) -> None:
        """``client``: hold chaos schedules while an incident is open (None: leave them)."""
        self._open_store = open_store
        self._client = client
        self._store: IncidentStore | None = None
        self._lock = threading.Lock()

    def store(self) -> IncidentStore:
        """The store, opened (and migrated) once."""
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store

    @activity.defn(name=RECORD_INCIDENT)
    async def record_incident(self, update: IncidentUpdate) -> None:
        """Apply one update; idempotent.

        The store keeps the highest incident version and keys failures and availability
        changes, so a retry or a resend writes nothing twice. Then chaos schedules are paused
        while any incident is open and resumed when none is (``hold_for_incidents``, itself
        idempotent); a schedule API that refuses is logged, never a reason to lose the record.
        """
        await asyncio.to_thread(lambda: self.store().apply(update))
        if self._client is None:
            return
        open_ = await asyncio.to_thread(lambda: [i.id for i in self.store().open_incidents()])
        try:
            for change in await hold_for_incidents(self._client, open_):
                activity.logger.info("chaos schedules: %s", change)
        except RPCError as exc:
            activity.logger.warning("chaos schedules not held for incidents %s: %s", open_, exc)

    def close(self) -> None:
        """Close the store if it was opened."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

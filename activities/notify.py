"""The notification hook: freezes, refusals and stopped repairs reach a person.

``Notifier`` is the interface the incidents work wires to webhooks; ``OutboxNotifier`` is the
one drc ships: a warning in the worker's log and one JSON line per notification appended to
``$DRC_HOME/notifications.jsonl``, an outbox an operator can tail or a log shipper can read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path

from temporalio import activity

from drc.names import NOTIFY
from drc.repair import Notification

log = logging.getLogger("drc.notify")


class Notifier(ABC):
    """Delivers a notification; may be called again with the same one (Temporal retries)."""

    @abstractmethod
    async def send(self, note: Notification, key: str) -> None:
        """Deliver ``note``; ``key`` is the same on every retry, for de-duplication."""


class OutboxNotifier(Notifier):
    """A log line and a line in an append-only JSON-lines outbox."""

    def __init__(self, outbox: Path) -> None:
        self._outbox = outbox

    async def send(self, note: Notification, key: str) -> None:
        """Append ``note`` unless a line with ``key`` is already there (a retry)."""
        log.warning(
            "%s %s: %s", note.severity, note.kind, note.summary, extra={"drc": asdict(note)}
        )
        await asyncio.to_thread(self._append, {"key": key, **asdict(note)})

    def _append(self, record: dict[str, object]) -> None:
        self._outbox.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True)
        if self._outbox.exists() and f'"key": "{record["key"]}"' in self._tail():
            return
        with self._outbox.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def _tail(self, size: int = 65536) -> str:
        with self._outbox.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")


class NotifyActivities:
    """The ``notify`` activity around the worker's notifier."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    @activity.defn(name=NOTIFY)
    async def notify(self, note: Notification) -> None:
        """Deliver one notification; safe to retry (keyed by workflow and activity id)."""
        info = activity.info()
        await self._notifier.send(
            note, f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        )

"""The notification hook: incidents, freezes, refusals and stopped repairs reach a person.

``OutboxNotifier`` writes a warning in the worker's log and one JSON line per notification to
``$DRC_HOME/notifications.jsonl`` (an outbox to tail or ship); ``WebhookNotifier`` posts each
notification as JSON, with a Slack-compatible ``text`` field, to every configured URL
(``DRC_WEBHOOKS``). A webhook that fails raises, so Temporal retries the activity; the URLs
already served are kept in the activity's heartbeat, so a retry posts only to the others.
The monitor never waits for a notification: a dead webhook delays no repair.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import httpx
from temporalio import activity

from drc.names import NOTIFY
from drc.repair import Notification
from reports.fmt import iso_s

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


class WebhookNotifier(Notifier):
    """POSTs every notification as JSON to each URL; raises if any URL did not take it."""

    def __init__(self, urls: Sequence[str], http: httpx.AsyncClient) -> None:
        self._urls = list(urls)
        self._http = http

    async def send(self, note: Notification, key: str) -> None:
        """Post to every URL not yet served on an earlier attempt (kept in the heartbeat)."""
        done = set(_served_on_earlier_attempts())
        body = webhook_body(note, key)
        errors: list[str] = []
        for url in self._urls:
            if url in done:
                continue
            try:
                response = await self._http.post(
                    url, json=body, headers={"Idempotency-Key": key}, timeout=10
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {exc}")
                continue
            done.add(url)
            if activity.in_activity():
                activity.heartbeat(sorted(done))
        if errors:
            raise RuntimeError("webhook delivery failed (retried): " + "; ".join(errors))


class FanoutNotifier(Notifier):
    """Every notifier in turn: the outbox first (local, always), then the webhooks."""

    def __init__(self, *notifiers: Notifier) -> None:
        self._notifiers = notifiers

    async def send(self, note: Notification, key: str) -> None:
        """Send through each; the outbox de-duplicates a retry, the webhooks skip served URLs."""
        for notifier in self._notifiers:
            await notifier.send(note, key)


def webhook_body(note: Notification, key: str) -> dict[str, object]:
    """The JSON a webhook receives: the notification, ISO-8601 time, and Slack's ``text``."""
    where = f"{note.service}/{note.replica}" if note.replica else note.service
    incident = f" [{note.incident_id}]" if note.incident_id else ""
    text = f"[drc] {note.severity.upper()} {note.kind} {where}{incident}: {note.summary}"
    return {
        **asdict(note),
        "at": iso_s(note.at),
        "text": text,
        "key": key,
    }


def _served_on_earlier_attempts() -> list[str]:
    if not activity.in_activity():
        return []
    details = activity.info().heartbeat_details
    if not details:
        return []
    served = details[0]
    return [str(url) for url in served] if isinstance(served, list) else []


class NotifyActivities:
    """The ``notify`` activity around the worker's notifier."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    @activity.defn(name=NOTIFY)
    async def notify(self, note: Notification) -> None:
        """Deliver one notification; safe to retry (keyed by workflow, run and activity id)."""
        info = activity.info()
        await self._notifier.send(
            note, f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        )

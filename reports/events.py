"""Reading history events: their times, type names, payloads and failures, never crashing.

drc writes every payload with ``pydantic_data_converter`` (``json/plain``), so a payload is
read with ``json.loads``; one that cannot be read (another encoding, a codec, corrupt bytes)
reads as ``UNDECODABLE`` and the report says so instead of failing.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import ApplicationErrorCategory, EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

from reports.fmt import clip

UNDECODABLE = "(undecodable)"

# Wrappers the SDK puts around the failure that says what went wrong.
_GENERIC_FAILURES = frozenset(
    {"Activity task failed", "Child Workflow execution failed", "Activity task timed out"}
)
_TYPE_NAMES: dict[int, str] = {}


def event_type(event: HistoryEvent) -> str:
    """``ActivityTaskScheduled`` for ``EVENT_TYPE_ACTIVITY_TASK_SCHEDULED``."""
    name = _TYPE_NAMES.get(event.event_type)
    if name is None:
        raw = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        name = "".join(word.capitalize() for word in raw.split("_"))
        _TYPE_NAMES[event.event_type] = name
    return name


def event_ns(event: HistoryEvent) -> int:
    """The event's time in Unix nanoseconds (the server's clock, never ours)."""
    return event.event_time.seconds * 1_000_000_000 + event.event_time.nanos


def attributes(event: HistoryEvent) -> Any:
    """The event's attributes message (``activity_task_failed_event_attributes``...)."""
    name = event.WhichOneof("attributes")
    return getattr(event, name) if name else None


def decode(payload: Payload) -> Any:
    """The JSON value of a ``json/plain`` payload, None for ``binary/null``, else UNDECODABLE."""
    encoding = payload.metadata.get("encoding", b"")
    if encoding == b"binary/null":
        return None
    if encoding != b"json/plain":
        return UNDECODABLE
    try:
        return json.loads(payload.data)
    except (ValueError, UnicodeDecodeError):
        return UNDECODABLE


def first(payloads: Payloads) -> Any:
    """The first payload's value (drc passes one input, one result), or None without one."""
    return decode(payloads.payloads[0]) if payloads.payloads else None


def user_summary(event: HistoryEvent) -> str:
    """The user-metadata summary the workflow gave this event (the Web UI shows it), or ""."""
    if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
        return ""
    value = decode(event.user_metadata.summary)
    return value if isinstance(value, str) else UNDECODABLE


def failure_text(failure: Failure) -> str:
    """The sentence of a failure: its own message, or its cause's when it only wraps one."""
    current: Message | None = failure
    while isinstance(current, Failure):
        if current.message and current.message not in _GENERIC_FAILURES:
            return current.message
        current = current.cause if current.HasField("cause") else None
    return failure.message


def failure_type(failure: Failure) -> str:
    """The application error type of a failure or of the failure it wraps (``PromoteFailed``)."""
    current: Failure | None = failure
    while current is not None:
        if current.HasField("application_failure_info") and current.application_failure_info.type:
            return current.application_failure_info.type
        current = current.cause if current.HasField("cause") else None
    return ""


def is_benign(failure: Failure) -> bool:
    """An application failure of category BENIGN (drc's "not ready yet, poll again")."""
    info = failure.application_failure_info
    benign = ApplicationErrorCategory.APPLICATION_ERROR_CATEGORY_BENIGN
    return failure.HasField("application_failure_info") and info.category == benign


def failure_details(failure: Failure) -> Any:
    """The first detail of an application failure (a failed runbook's ``RunbookResult``)."""
    if not failure.HasField("application_failure_info"):
        return None
    return first(failure.application_failure_info.details)


def sentence(value: Any, limit: int = 300) -> str:
    """What a decoded payload says, in one line: drc's ``reason``/``summary``, else its JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict):
        for key in ("reason", "summary", "message"):
            if isinstance(value.get(key), str) and value[key]:
                return clip(value[key], limit)
        transitions = value.get("transitions")
        if isinstance(transitions, list) and transitions:
            return clip("; ".join(_transition(t) for t in transitions), limit)
        # Anything else (a watch spec, a config): its plain fields, not pages of nested JSON.
        plain = [f"{k}={_scalar(v)}" for k, v in sorted(value.items()) if not _nested(v)]
        return clip(" ".join(plain), limit)
    return clip(json.dumps(value, sort_keys=True, ensure_ascii=False), limit)


def _nested(value: Any) -> bool:
    return isinstance(value, dict | list)


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _transition(change: Any) -> str:
    """A watch report's transition: ``og-a healthy → failed: <reason>``."""
    if not isinstance(change, dict):
        return json.dumps(change, sort_keys=True)
    head = f"{change.get('replica')} {change.get('old')} → {change.get('new')}"
    return f"{head}: {change['reason']}" if change.get("reason") else head

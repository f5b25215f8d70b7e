"""State-store errors, the conversion from redis-py's exceptions, and the activity boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from temporalio.exceptions import ApplicationError

from drc.errors import DrcError

if TYPE_CHECKING:
    from activities.state.base import Endpoint


class StateError(DrcError):
    """The state store refused an operation or answered something unusable."""


class StateUnreachableError(StateError):
    """The state store could not be reached or did not answer in time; a retry may work."""


def to_application_error(exc: StateError) -> ApplicationError:
    """The ``ApplicationError`` a state failure becomes at the activity boundary."""
    if isinstance(exc, StateUnreachableError):
        return ApplicationError(str(exc), type="StateUnreachable", non_retryable=False)
    return ApplicationError(str(exc), type="StateError", non_retryable=True)


@contextmanager
def redis_errors(ep: Endpoint, what: str) -> Iterator[None]:
    """Turn redis-py's and the OS's exceptions into ``StateError``s naming ``ep`` and ``what``."""
    try:
        yield
    except (AuthenticationError, AuthorizationError) as exc:
        raise StateError(f"{ep} refused to {what}: {_said(exc)}") from exc
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StateUnreachableError(f"{ep} unreachable to {what}: {_said(exc)}") from exc
    except ResponseError as exc:
        raise StateError(f"{ep} refused to {what}: {_said(exc)}") from exc
    except RedisError as exc:
        raise StateError(f"{ep} failed to {what}: {_said(exc)}") from exc


def _said(exc: BaseException) -> str:
    """Redis's words, with the error code redis-py strips for the codes it maps to classes."""
    text = str(exc).strip() or type(exc).__name__
    code = getattr(exc, "status_code", None)
    if code and not text.startswith(code):
        text = f"{code} {text}"
    return text

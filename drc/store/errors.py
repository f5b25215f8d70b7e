"""The store's one error type, under drc's root so activities convert it like any other."""

from __future__ import annotations

from drc.errors import DrcError


class StoreError(DrcError):
    """The incident store cannot be opened or refused an operation.

    The message names the database URL with its password hidden, and the cause (the driver's
    own exception) is chained, so an operator can tell a typo from an unreachable server.
    """

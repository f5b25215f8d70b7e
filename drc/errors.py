"""One error hierarchy for drc; activities convert these to ``ApplicationError`` at their edge."""

from __future__ import annotations

from dataclasses import dataclass


class DrcError(Exception):
    """Root of every error drc raises on purpose."""


@dataclass(frozen=True)
class CatalogIssue:
    """One problem in a catalog, with its location (``services[2].replicas[0].url``)."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class CatalogError(DrcError):
    """The catalog cannot be used; ``issues`` lists every problem found, each located."""

    def __init__(self, source: str, issues: list[CatalogIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"{source}: {len(issues)} error(s)\n{lines}")


class UnknownServiceError(DrcError):
    """A command named a service that is not in the catalog."""


class UnknownReplicaError(DrcError):
    """A command named a replica that the service does not have."""


class ProcessControlError(DrcError):
    """Process control (supervisord) refused or failed an operation."""


class ProcessExitedError(ProcessControlError):
    """The process exited during or right after its start: retrying the same start won't help."""


class RunbookError(DrcError):
    """A runbook cannot be loaded or run as written; ``issues`` locates each problem found."""

    def __init__(self, message: str, issues: list[CatalogIssue] | None = None) -> None:
        self.issues = list(issues or [])
        super().__init__(message)


class ChaosError(DrcError):
    """A chaos experiment cannot be run as written; ``issues`` locates every problem found."""

    def __init__(self, source: str, issues: list[CatalogIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"{source}: {len(issues)} error(s)\n{lines}")

"""What the report workflow and its activity take and return."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReportRequest:
    """Write the post-incident report of ``incident_id`` (from its workflow histories)."""

    incident_id: str


@dataclass
class ReportResult:
    """Where the report went, and which runs' histories were gone (rendered from the store)."""

    incident_id: str
    markdown_path: str
    html_path: str
    rows: int
    missing: list[str] = field(default_factory=list)

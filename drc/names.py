"""Task queues, workflow ids and search attributes: every name drc shares, in one place."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

MONITOR_PREFIX = "monitor/"
RESTART_PREFIX = "restart/"

SA_SERVICE = SearchAttributeKey.for_keyword("service")
SA_KIND = SearchAttributeKey.for_keyword("kind")
SA_INCIDENT = SearchAttributeKey.for_keyword("incident")
SA_SEVERITY = SearchAttributeKey.for_keyword("severity")

# name -> Temporal type, as `temporal server start-dev --search-attribute` expects them.
SEARCH_ATTRIBUTES: dict[str, str] = {
    SA_SERVICE.name: "Keyword",
    SA_KIND.name: "Keyword",
    SA_INCIDENT.name: "Keyword",
    SA_SEVERITY.name: "Keyword",
}


def monitor_id(service: str) -> str:
    """Workflow id of a service's monitor: one per service, forever."""
    return f"{MONITOR_PREFIX}{service}"


def restart_id(service: str, replica: str) -> str:
    """Workflow id of a replica's restart: at most one runs at a time."""
    return f"{RESTART_PREFIX}{service}/{replica}"

"""IncidentReport: writes an incident's post-incident report once it has resolved.

One activity does the work (read the histories through the Temporal client, render, write):
the workflow exists so that the report is a durable, retried, visible step of the incident,
listed in the Web UI beside its repairs (same ``incident`` search attribute).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from drc.names import REPORT_WORKFLOW, WRITE_REPORT
    from drc.report import ReportRequest, ReportResult


@workflow.defn(name=REPORT_WORKFLOW)
class IncidentReportWorkflow:
    """Write the report of one incident to ``$DRC_HOME/reports/`` and the store."""

    @workflow.run
    async def run(self, request: ReportRequest) -> ReportResult:
        """Retried until written: a store or server that is briefly away only delays it."""
        result: ReportResult = await workflow.execute_activity(
            WRITE_REPORT,
            request,
            result_type=ReportResult,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=2),
                maximum_interval=timedelta(minutes=1),
                maximum_attempts=30,
            ),
            summary=f"write the report of {request.incident_id}",
        )
        return result

"""The workflow sandbox every drc worker (and every workflow test) runs workflows in."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Workflows import no activity module (they call activities by name, drc.names), so no network
# library enters the sandbox. pydantic (models in workflow inputs) and yaml (runbook models) are
# loaded once, outside it, instead of re-imported into every workflow's sandbox; the workflows'
# input types then resolve against one pydantic, as the data converter's does.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "pydantic", "pydantic_core", "yaml"
    )
)

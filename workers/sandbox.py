"""The workflow sandbox every drc worker (and every workflow test) runs workflows in."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Workflows import no activity module (they call activities by name, drc.names), so no network
# library enters the sandbox. What passes through, loaded once outside it:
# - pydantic and yaml (models in workflow inputs, runbook models);
# - the kernel (drc) and the runbook models: pure, deterministic code. They must be passed
#   through as packages, not only the modules a workflow names: pydantic resolves a type's
#   annotations through sys.modules[<its module>], and a kernel module reached only through
#   another one (drc.model, behind drc.watch) is otherwise missing from the sandbox's
#   sys.modules, so decoding a workflow input failed with "not fully defined".
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "pydantic", "pydantic_core", "yaml", "drc", "runbooks"
    )
)

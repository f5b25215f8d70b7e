"""The service catalog and (later) runbook models, validated by pydantic."""

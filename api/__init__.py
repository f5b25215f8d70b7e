"""The recovery API: FastAPI over the fleet snapshot and the incident store."""

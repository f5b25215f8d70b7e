"""Deterministic orchestration only: every side effect lives in ``activities``."""

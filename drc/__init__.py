"""Shared kernel of drc: settings, names, errors, runtime types and the pure detector."""

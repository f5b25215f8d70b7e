"""Recorded histories of real runs, replayed by ``tests/test_replay.py``."""

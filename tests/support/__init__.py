"""Helpers shared by the tests: free ports, polling, real servers started for one test run."""

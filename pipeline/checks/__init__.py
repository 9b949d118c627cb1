"""Checks: one module per kind of test run on a compose's artifact."""

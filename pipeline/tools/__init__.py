"""Thin adapters, one per external program: pure argv builders and the runners that use them."""

"""Executor implementations, one module each."""

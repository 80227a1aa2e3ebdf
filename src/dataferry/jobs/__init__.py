"""Durable jobs: pure state rules, a store, handlers per kind, executors, a scheduler tick."""

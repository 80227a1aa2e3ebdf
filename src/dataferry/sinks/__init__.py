"""Sinks: push new, modified and deleted records to a partner's web service."""

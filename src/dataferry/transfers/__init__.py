"""Transfers: plan a source, copy each file verified, record per-file state."""

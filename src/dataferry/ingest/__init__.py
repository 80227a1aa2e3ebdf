"""Ingest: streaming bundle upload, validation, archive and metadata (Pacifica-compatible)."""

"""Doors that speak other systems' protocols (Pacifica ingest, ...)."""

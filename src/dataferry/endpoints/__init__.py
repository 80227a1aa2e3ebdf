"""Endpoint registry: named storage locations, their secrets and their filesystems."""

"""Real backing services: skip on a developer machine without them, fail under CI."""

from __future__ import annotations

import os
import socket

import pytest

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip with ``reason``; under CI=true a missing service is a failure instead."""
    if CI:
        pytest.fail(f"{reason} (CI=true: this must not skip)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False

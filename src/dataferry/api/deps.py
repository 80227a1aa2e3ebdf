"""Request-scoped access to the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from dataferry.app import Core


def core(request: Request) -> Core:
    c: Core = request.app.state.core
    return c

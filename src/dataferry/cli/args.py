"""Command-line text that is not text: bytes that are not UTF-8.

Python hands such an argument over with each bad byte as a lone surrogate
(``b"\\xff"`` -> ``"\\udcff"``, PEP 383): it cannot be sent in a URL, a header or
a JSON body, nor written to a file as text. Every command's text parameters are
held to UTF-8 before its body runs, so such an argument is an error naming it
(exit 2) and nothing happens. File names are left as they are: any bytes are a
file name on POSIX, and a command only opens them on this machine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from dataferry.cli.common import fail, shown
from dataferry.text import lone_surrogate

USAGE_ERROR = 2


def check_text(name: str, value: Any) -> None:
    """Refuse a text parameter (or a list of them) holding bytes that are not UTF-8."""
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, str) and lone_surrogate(item) is not None:
            option = name.replace("_", "-")
            fail(f"{option} '{shown(item)[:200]}' is not valid UTF-8 text", USAGE_ERROR)


def _checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # Typer reads the parameters through __wrapped__
    def run(**params: Any) -> Any:
        for name, value in params.items():
            check_text(name, value)
        return fn(**params)

    return run


def require_utf8(app: typer.Typer) -> None:
    """Hold the text parameters of every command of ``app`` (and its groups, and
    their callbacks) to UTF-8 (see the module's docstring)."""
    apps = [app]
    while apps:
        current = apps.pop()
        info = current.registered_callback
        if info is not None and info.callback is not None:
            info.callback = _checked(info.callback)
        for command in current.registered_commands:
            if command.callback is not None:
                command.callback = _checked(command.callback)
        apps.extend(g.typer_instance for g in current.registered_groups if g.typer_instance)

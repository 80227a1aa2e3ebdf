"""What every command shares: settings, the HTTP client, output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

from dataferry.client import Client
from dataferry.config import Settings, load_settings

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # a bad config file or variable: say so plainly
        fail(f"configuration error: {exc}")


def client() -> Client:
    s = settings()
    return Client(s.url, s.token)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def load_json(text: str) -> Any:
    """``json.loads``, with JSON nested too deeply to read a ValueError like any other
    malformed text (the parser's RecursionError would end the CLI in a traceback)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the JSON text is nested too deeply to read") from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """``["k=v", ...]`` -> dict; a pair without ``=`` is an error."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"{what} {pair!r} is not of the form key=value")
        out[key] = value
    return out

"""What every command shares: settings, the HTTP client, output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.text import Text

from dataferry.client import Client
from dataferry.config import Settings, load_settings

# No markup: what the commands print (names, URLs, record data, messages) comes
# from users and servers, and a "[/x]" in it was a MarkupError after the change.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # a bad config file or variable: say so plainly
        fail(f"configuration error: {exc}")


def shown(value: str) -> str:
    """``value`` as the bytes it came from (argv and the environment carry bytes that
    are not UTF-8 as lone surrogates, PEP 383), the bad ones written as ``\\xff``."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def client() -> Client:
    """A client of the service at ``url`` with ``token`` (options or DATAFERRY_*
    variables), both checked first: the HTTP client would end in a traceback."""
    s = settings()
    if not (s.token.isascii() and s.token.isprintable()):
        fail(
            f"the token '{shown(s.token)[:80]}' (--token or DATAFERRY_TOKEN) must be "
            "printable ASCII characters"
        )
    try:
        url = httpx.URL(s.url)
    except httpx.InvalidURL as exc:
        fail(f"the service URL '{shown(s.url)[:200]}' (--url or DATAFERRY_URL) is not one: {exc}")
    except UnicodeError:
        fail(f"the service URL '{shown(s.url)[:200]}' (--url or DATAFERRY_URL) is not UTF-8 text")
    if url.scheme not in ("http", "https") or not url.host:
        fail(
            f"the service URL '{shown(s.url)[:200]}' (--url or DATAFERRY_URL) must be "
            "http(s)://HOST[:PORT]"
        )
    return Client(s.url, s.token)


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def log_level(value: str) -> str:
    """``--log-level`` in lower case, or a clear error (logging's was a traceback)."""
    if value.lower() not in LOG_LEVELS:
        fail(f"--log-level {value!r} is not one of {', '.join(LOG_LEVELS)}", 2)
    return value.lower()


def print_error(message: str) -> None:
    """``error: MESSAGE`` on stderr, the message as it is (never read as markup)."""
    err_console.print(Text.assemble(("error:", "red"), " ", message), highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    print_error(message)
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

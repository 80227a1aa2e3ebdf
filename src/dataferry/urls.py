"""Base URLs of other services (replication peers, dataset sites).

A URL is stored once and used for every later request, so it is held at the door
to what the HTTP client (httpx) can send to: ``http(s)://HOST[:PORT][/PATH]``, a
port in 1-65535, no spaces or control characters. Otherwise a typo was stored and
only failed later, at every sync or poll, as a traceback.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

import httpx


def parse_base_url(url: str) -> SplitResult:
    """``url``'s parts, or ValueError saying what is wrong with it."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("it holds a space or a control character")
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed (and range-checked) on access
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise ValueError(str(exc)) from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("it must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("it names no host")
    try:
        parts.hostname.encode("idna")  # what the client does before it connects
    except UnicodeError:
        raise ValueError(
            f"host name {parts.hostname[:80]!r} has an empty or too long label"
        ) from None
    if port == 0:
        raise ValueError("port 0 is not a port to connect to")
    return parts

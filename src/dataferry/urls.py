"""URLs of other services: base URLs of replication peers and dataset sites, and the
target URL of a sink.

A URL is stored once and used for every later request, so it is held at the door
to what the HTTP client (httpx) can send to: ``http(s)://HOST[:PORT][/PATH]``, a
port in 1-65535, no spaces or control characters, a host name the client can
encode. Otherwise a typo was stored and only failed later, at every sync, poll or
delivery, as a traceback. Each caller says which URL it is in its own message
(``peer URL 'x' must be http(s)://HOST[:PORT]: <why>``); this module says why.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

import httpx


def _port(parts: SplitResult) -> int | None:
    """The URL's port, or ValueError saying what is wrong with it."""
    try:
        port = parts.port  # parsed (and range-checked) on access
    except ValueError:
        # The text after the host (an IPv6 literal is in brackets, with colons inside).
        raw = parts.netloc.rpartition("@")[2].rpartition("]")[2].rpartition(":")[2]
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(f"port {raw[:20]!r} is not a number") from None
        port = int(raw)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    return port


def parse_base_url(url: str) -> SplitResult:
    """``url``'s parts, or ValueError saying what is wrong with it."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("it holds a space or a control character")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise ValueError(str(exc)) from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("it must start with http:// or https://")
    _port(parts)
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from None
    if not parts.hostname:
        raise ValueError("it names no host")
    try:
        parts.hostname.encode("idna")  # what the client does before it connects
    except UnicodeError:
        raise ValueError(
            f"host name {parts.hostname[:80]!r} has an empty or too long label"
        ) from None
    return parts

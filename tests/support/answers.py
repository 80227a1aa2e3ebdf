"""Answers of the small stand-in HTTP servers tests start (a peer, a provider, a
web server that is not dataferry)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def send_body(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
) -> None:
    """Answer ``handler``'s request with ``status`` and ``body``."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
